"""MongoDB adapters: the batch writer the consumer uses, and the reader behind history requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymongo
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import BulkWriteError
from pymongo.write_concern import WriteConcern

from services.core.config import ApiConfig
from services.core.paging import HISTORY_SORT, Page, history_filter
from services.core.purchase import Purchase, from_document

DUPLICATE_KEY = 11000
INDEX = [("userId", pymongo.ASCENDING), ("timestamp", pymongo.DESCENDING)]
# Short enough that a writer notices an outage quickly and retries; the consumer keeps polling meanwhile.
SERVER_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class InsertResult:
    inserted: int
    duplicates: int


class PurchaseWriter:
    """Synchronous (it runs on the consumer's thread): one unordered bulk insert per batch."""

    def __init__(self, config: ApiConfig) -> None:
        self._client: MongoClient = MongoClient(
            config.mongodb_uri, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS, connectTimeoutMS=SERVER_TIMEOUT_MS,
            socketTimeoutMS=10_000, tz_aware=True,
        )
        # Explicit, not whatever the URI or the server defaults to: offsets are committed once this is satisfied.
        concern = WriteConcern(w=config.write_concern_w, j=True)
        self._collection = self._client[config.mongodb_database].get_collection("purchases", write_concern=concern)

    def ensure_indexes(self) -> None:
        self._collection.create_index(INDEX, name="userId_timestamp")

    def insert(self, documents: list[dict[str, Any]]) -> InsertResult:
        """Store every document; one already stored (same _id) counts as stored. Raises on anything else."""
        if not documents:
            return InsertResult(0, 0)
        try:
            result = self._collection.insert_many(documents, ordered=False)
            return InsertResult(len(result.inserted_ids), 0)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != DUPLICATE_KEY for error in errors) or exc.details.get("writeConcernErrors"):
                raise
            return InsertResult(exc.details.get("nInserted", 0), len(errors))

    def close(self) -> None:
        self._client.close()


class PurchaseReader:
    """Asynchronous (it runs on the event loop) history reads."""

    def __init__(self, config: ApiConfig) -> None:
        self._client: AsyncMongoClient = AsyncMongoClient(
            config.mongodb_uri, serverSelectionTimeoutMS=SERVER_TIMEOUT_MS, connectTimeoutMS=SERVER_TIMEOUT_MS,
            socketTimeoutMS=5000, tz_aware=True,
        )
        self._collection = self._client[config.mongodb_database]["purchases"]

    async def history(self, user_id: str, page: Page, purchase_id: str | None = None) -> list[Purchase]:
        query = history_filter(user_id, page.before, purchase_id)
        cursor = self._collection.find(query).sort(HISTORY_SORT).limit(page.limit)
        return [from_document(doc) async for doc in cursor]

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def close(self) -> None:
        await self._client.close()

"""The MongoDB adapters of services/api/store.py: what the writer asks of MongoDB (no server needed to see it), and
that a real FerretDB takes a batch with that write concern, duplicates counted as stored."""

import pytest

from services.api.store import PurchaseWriter
from services.core.config import ApiConfig
from services.core.purchase import decode_event, to_document

from .test_consumer import event


@pytest.mark.unit
def test_inserts_are_acknowledged_by_a_journaled_majority_unless_configured_otherwise():
    writer = PurchaseWriter(ApiConfig.from_env({}))  # pymongo connects lazily: nothing is sent here
    assert writer._collection.write_concern.document == {"w": "majority", "j": True}
    two = PurchaseWriter(ApiConfig.from_env({"MONGODB_WRITE_CONCERN": "2"}))
    assert two._collection.write_concern.document == {"w": 2, "j": True}


def test_a_batch_is_stored_with_that_concern_and_a_repeat_counts_as_stored(system):
    config = ApiConfig.from_env({"MONGODB_URI": system.mongodb_uri, "MONGODB_DATABASE": system.database})
    writer = PurchaseWriter(config)
    try:
        documents = [to_document(decode_event(event(f"store-{i}")[1])) for i in range(5)]
        first = writer.insert(documents)
        again = writer.insert(documents[:3] + [to_document(decode_event(event("store-new")[1]))])
    finally:
        writer.close()
    assert (first.inserted, first.duplicates) == (5, 0)
    assert (again.inserted, again.duplicates) == (1, 3)
    assert len(system.stored_ids()) == 6

"""Our FerretDB change (scripts/ferretdb/sort-limit-pushdown.patch): history reads sorted and limited in PostgreSQL,
with results equal to what FerretDB's own in-memory sort gives, whatever types the documents hold."""

import itertools
from datetime import UTC, datetime, timedelta

import pymongo
from bson import ObjectId

from services.api.store import INDEX
from services.core.paging import HISTORY_SORT, Cursor, history_filter

HEX = "5f1d7c0a9b8e7d6c5b4a3928"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def documents():
    """Users whose sorted field `k` holds types PostgreSQL orders as MongoDB does, and users whose data must make
    the backend give up the limit (types it cannot order, and filter matches that are not strings)."""
    day = [EPOCH + timedelta(hours=h) for h in range(6)]
    kinds = {
        # dates only: the common case, limited in SQL
        "dates": day,
        # the types ordered in SQL, mixed: null/missing < strings (bytewise: "Z" < "a" < "é") < ObjectId < date
        "orderable": [None, "missing", "a", "Z", "é", "ab", ObjectId(HEX), ObjectId("0" * 24), day[0], day[3]],
        # numbers, booleans, arrays (sorted by an element), documents: the backend must return every match
        "other": [3, 2.5, True, [day[5], "x"], [1, 9], {"n": 1}, "b", day[1], None],
    }
    docs = []
    for user, values in kinds.items():
        for i, value in enumerate(values):
            doc = {"_id": f"{user}-{i:02}", "u": user}
            if value != "missing":
                doc["k"] = value
            docs.append(doc)
    # `{u: HEX}` also matches, in SQL, an ObjectID with that hex and an array holding the string.
    docs += [{"_id": "hex-0", "u": HEX, "k": day[0]}, {"_id": "hex-1", "u": ObjectId(HEX), "k": day[5]},
             {"_id": "hex-2", "u": [HEX, "other"], "k": day[4]}, {"_id": "hex-3", "u": HEX, "k": day[2]}]
    return docs


def test_limited_sorted_reads_return_what_ferretdbs_in_memory_sort_returns(ferretdb):
    collection = pymongo.MongoClient(ferretdb.address)["db_sort_limit_pushdown"]["mixed"]
    collection.insert_many(documents())
    users = ["dates", "orderable", "other", HEX]
    filters = [f(user) for user in users for f in (lambda u: {"u": u}, lambda u: {"u": {"$eq": u}})]
    filters.append({"u": "orderable", "k": {"$exists": True}})  # not pushed down: an operator other than $eq
    sorts = [[("k", -1), ("_id", -1)], [("k", 1), ("_id", 1)], [("k", 1), ("_id", -1)], [("_id", -1)]]
    compared = 0
    for filter_, sort, limit in itertools.product(filters, sorts, (1, 3, 7, 50)):
        everything = [doc["_id"] for doc in collection.find(filter_).sort(sort)]  # no limit: sorted in memory
        limited = [doc["_id"] for doc in collection.find(filter_).sort(sort).limit(limit)]
        assert limited == everything[:limit], (filter_, sort, limit)
        compared += 1
    assert compared == len(filters) * len(sorts) * 4
    # The comparison means something only if the data is what we think: the ObjectID and the array match.
    assert [doc["_id"] for doc in collection.find({"u": HEX}).sort("_id", 1)] == ["hex-0", "hex-2", "hex-3"]
    assert [doc["_id"] for doc in collection.find({"u": "dates"}).sort("k", -1).limit(2)] == ["dates-05", "dates-04"]


def test_a_history_read_is_sorted_and_limited_by_postgresql(ferretdb):
    database = pymongo.MongoClient(ferretdb.address)["db_history_pushdown"]
    database["purchases"].create_index(INDEX)
    database["purchases"].insert_many([{"_id": f"p{i:04}", "userId": f"user-{i % 5}",
                                        "timestamp": EPOCH + timedelta(seconds=i)} for i in range(1000)])
    query = {"find": "purchases", "filter": history_filter("user-3", None), "sort": dict(HISTORY_SORT), "limit": 10}
    explained = database.command("explain", query)
    assert (explained["filterPushdown"], explained["sortPushdown"], explained["limitPushdown"]) == (True, True, True)
    plan = explained["queryPlanner"]["Plan"]
    assert plan["Node Type"] == "Limit", plan
    assert "purchases_userid_gin" in str(plan), "the filter is still served by the GIN index"
    found = database["purchases"].find(history_filter("user-3", None)).sort(HISTORY_SORT).limit(10)
    assert [doc["_id"] for doc in found] == [f"p{i:04}" for i in range(998, 948, -5)]
    # The next page (an $or of ranges past the first page's last purchase) is not pushed down, and still right.
    after = history_filter("user-3", Cursor(timestamp=EPOCH + timedelta(seconds=953), id="p0953"))
    explained = database.command("explain", {**query, "filter": after})
    assert explained["limitPushdown"] is False
    found = database["purchases"].find(after).sort(HISTORY_SORT).limit(10)
    assert [doc["_id"] for doc in found] == [f"p{i:04}" for i in range(948, 898, -5)]

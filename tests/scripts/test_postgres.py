"""The local stack's PostgreSQL under FerretDB: our own cluster, run unprivileged, and the GIN index that serves
history reads (scripts/stack/postgres.py), checked against what FerretDB and PostgreSQL really do."""

import os
import pwd

import pymongo

from scripts.stack.postgres import collection_table
from services.api.store import INDEX


def test_postgres_runs_as_an_unprivileged_user_of_its_own_cluster(ferretdb):
    owner = os.stat(f"/proc/{ferretdb.postgres.process.pid}").st_uid
    assert owner != 0, "PostgreSQL refuses to run as root; the stack must run it as another user"
    if os.geteuid() != 0:
        assert owner == os.geteuid()
    else:
        assert pwd.getpwuid(owner).pw_name in ("postgres", "nobody")
    assert ferretdb.postgres.sql("SHOW port;").strip() == str(ferretdb.postgres.port)
    assert ferretdb.postgres.sql("SHOW listen_addresses;").strip() == "127.0.0.1"


def test_a_history_read_is_pushed_down_to_postgresql_and_served_by_the_gin_index(ferretdb):
    client = pymongo.MongoClient(ferretdb.address)
    database = client["db_history_index"]
    try:
        database["purchases"].create_index(INDEX)  # as the api does at start; FerretDB creates the table
        database["purchases"].insert_many([{"_id": f"p{i}", "userId": f"user-{i % 200}", "timestamp": i}
                                           for i in range(4000)])
        # Our assumption about FerretDB's table naming, against FerretDB's own metadata.
        table = ferretdb.postgres.sql("SELECT _jsonb->>'table' FROM db_history_index._ferretdb_database_metadata "
                                      "WHERE _jsonb->>'_id' = 'purchases';").strip()
        assert table == collection_table()
        indexes = ferretdb.postgres.sql("SELECT indexdef FROM pg_indexes WHERE schemaname = 'db_history_index' "
                                        f"AND tablename = '{table}';")
        assert "USING gin (((_jsonb -> 'userId'::text)) jsonb_path_ops)" in indexes, indexes

        explained = database.command("explain", {"find": "purchases", "filter": {"userId": "user-7"}})
        assert explained["filterPushdown"] is True
        plan = ferretdb.postgres.sql(f"ANALYZE db_history_index.{table}; EXPLAIN SELECT _jsonb FROM "
                                     f"db_history_index.{table} WHERE _jsonb->'userId' @> '\"user-7\"';")
        assert "purchases_userid_gin" in plan, plan
        found = list(database["purchases"].find({"userId": "user-7"}).sort("timestamp", -1).limit(5))
        assert [doc["timestamp"] for doc in found] == [3807, 3607, 3407, 3207, 3007]
    finally:
        client.drop_database("db_history_index")
        client.close()


def test_only_the_purchases_collection_gets_the_index(ferretdb):
    client = pymongo.MongoClient(ferretdb.address)
    try:
        client["db_other_collection"]["orders"].insert_one({"_id": 1, "userId": "x"})
        indexes = ferretdb.postgres.sql("SELECT indexname FROM pg_indexes WHERE schemaname = 'db_other_collection';")
        assert "purchases_userid_gin" not in indexes
    finally:
        client.drop_database("db_other_collection")
        client.close()

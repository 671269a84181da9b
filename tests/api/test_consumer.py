"""The api's consumer against the real Kafka and the real FerretDB."""

import dataclasses
import json
import re
import signal
import time
import uuid

import requests

from scripts.stack.waiting import until
from services.core.purchase import Order, encode_event, new_purchase, utc_now


def event(user_id: str = "u1", price: float = 5.0, purchase_id: str | None = None) -> tuple[bytes, bytes]:
    purchase = new_purchase(Order("tester", user_id, price, "lamp"), purchase_id or str(uuid.uuid4()), utc_now())
    return user_id.encode(), encode_event(purchase)


def test_a_published_purchase_is_consumed_and_stored(system):
    system.start_api()
    key, value = event("alice", 12.5)
    system.produce_raw([(key, value)])
    sent = json.loads(value)
    until(lambda: system.stored_ids() == [sent["id"]], 20, "the purchase to be stored")
    doc = system.collection.find_one({"_id": sent["id"]})
    assert (doc["userId"], doc["username"], doc["price"], doc["item"]) == ("alice", "tester", 12.5, "lamp")
    history = requests.get(f"{system.api_url}/api/purchases/alice", timeout=5).json()
    assert history == [{k: v for k, v in sent.items() if k != "v"}]


def test_offsets_are_committed_only_after_the_batch_is_stored(system):
    system.start_api()
    system.produce_raw([event()])
    until(lambda: system.committed_total() == 1, 20, "the first batch to be committed")

    system.ferretdb.kill()
    try:
        system.produce_raw([event() for _ in range(20)])
        time.sleep(5)  # the consumer has read the batch by now, and is retrying the store
        assert system.committed_total() == 1, "offsets moved while nothing could be stored"
        assert "store failed, retrying" in system.log("api")
        retries = re.search(r'^purchase_store_retries_total\{operation="store"\} (\S+)$',
                            requests.get(system.api.metrics_url, timeout=5).text, re.M)
        assert retries and float(retries.group(1)) >= 2, "each retry of the store is counted"
    finally:
        system.ferretdb.start()
    until(lambda: len(system.stored_ids()) == 21, 30, "the batch to be stored once MongoDB is back")
    until(lambda: system.committed_total() == 21, 15, "the batch to be committed after storing it")


def test_redelivered_events_make_no_duplicate(system):
    same = event("bob")
    others = [event("bob") for _ in range(9)]
    system.produce_raw([same, same, *others])  # the same purchase twice in the stream
    system.start_api()
    until(lambda: system.committed_total() == 11, 20, "all 11 records to be committed")
    assert len(system.stored_ids()) == 10

    # A fresh consumer group re-reads the whole topic: every record is delivered again.
    system.api.stop()
    system.names = dataclasses.replace(system.names, group=f"{system.group}-again")
    system.start_api()
    until(lambda: system.committed_total() == 11, 20, "the second group to read everything")
    metrics = requests.get(system.api.metrics_url, timeout=5).text
    assert "purchases_duplicate_total 11.0" in metrics
    assert len(system.stored_ids()) == 10


def test_a_poison_event_goes_to_the_dead_letter_topic_and_the_events_after_it_are_stored(system):
    good_before, good_after = event("carol"), event("carol")
    bad_price = (b"carol", json.dumps({**json.loads(good_before[1]), "id": str(uuid.uuid4()), "price": -1}).encode())
    system.produce_raw([good_before, (b"carol", b"{not json"), bad_price, good_after])
    system.start_api()
    until(lambda: system.committed_total() == 4, 20, "all four records to be committed")
    assert sorted(system.stored_ids()) == sorted(json.loads(v)["id"] for _, v in (good_before, good_after))

    letters = system.dead_letters(expected=2)
    assert [letter.value for letter in letters] == [b"{not json", bad_price[1]]
    reasons = [dict(letter.headers)["reason"].decode() for letter in letters]
    assert "not valid JSON" in reasons[0]
    assert "'price' must be greater than 0" in reasons[1]
    assert all(dict(letter.headers)["source-topic"] == system.topic.encode() for letter in letters)
    metrics = requests.get(system.api.metrics_url, timeout=5).text
    assert 'purchases_dead_lettered_total{reason="not_json"} 1.0' in metrics
    assert 'purchases_dead_lettered_total{reason="invalid_price"} 1.0' in metrics


def test_a_partition_that_comes_back_after_another_consumer_advanced_it_is_never_committed_backwards(system):
    """KEDA's scale-down after a burst did this: a pod that had stored a partition's records, lost the partition
    to a new pod (which stored and committed more), then got it back, committed its own older offset for it on
    shutdown. The group went backwards: records read again, and lag that never drained with nothing new to read."""
    system.start_api()
    first = system.api
    system.produce_raw([event(f"u{i}") for i in range(200)])  # 200 keys: every partition gets records
    until(lambda: system.committed_total() == 200, 30, "the first consumer to store and commit all 200")

    second = system.start_another_api()
    until(lambda: system.group_settled(2), 30, "the second consumer to join and take its partitions")
    system.produce_raw([event(f"u{i}") for i in range(200)])
    until(lambda: system.committed_total() == 400, 30, "both consumers to store and commit 200 more")
    assert "batch stored" in second.log_path.read_text(), "the second consumer advanced no partition"

    second.process.send_signal(signal.SIGTERM)  # its partitions go back to the first consumer
    assert second.process.wait(30) == 0
    until(lambda: system.group_settled(1), 30, "the first consumer to hold every partition again")
    time.sleep(3)  # the first consumer holds every partition again, and turns its loop with nothing to read
    assert system.committed_total() == 400

    first.process.send_signal(signal.SIGTERM)  # commits what it stored, for the partitions it holds
    assert first.process.wait(30) == 0
    assert system.committed_total() == 400, "a consumer committed offsets older than the group's"
    assert len(system.stored_ids()) == 400

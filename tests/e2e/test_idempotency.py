"""Idempotency-Key end to end, on the real stack: a retry is the same purchase; another body is refused.

What a client may rely on (README, "What a 503 means"): the same key and body always answer the same purchase
(id, item, price, username); once stored, exactly the stored one, timestamp included; a different body with a
key already used is a 422 naming the key.
"""

import uuid

import requests

from scripts.stack.waiting import until


def buy(system, body: dict, key: str) -> requests.Response:
    return requests.post(f"{system.web_url}/api/buy", json=body, headers={"Idempotency-Key": key}, timeout=10)


def test_a_retry_with_the_same_key_and_body_answers_the_same_purchase_item_and_timestamp_included(running_system):
    body, key = {"username": "ann", "userId": f"idem-{uuid.uuid4()}", "price": 10}, str(uuid.uuid4())
    first = buy(running_system, body, key)
    again = buy(running_system, body, key)
    assert first.status_code == again.status_code == 202
    assert again.json()["purchase"] == first.json()["purchase"]  # id, item (random but kept), price, timestamp
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    until(lambda: running_system.stored_ids_for(body["userId"]), 15, "the purchase to be stored")
    assert running_system.stored_ids_for(body["userId"]) == [first.json()["id"]]


def test_the_same_key_with_another_body_is_refused_with_422_naming_the_key(running_system):
    body, key = {"username": "ann", "userId": f"idem-{uuid.uuid4()}", "price": 10}, f"order-{uuid.uuid4()}"
    first = buy(running_system, body, key)
    assert first.status_code == 202
    for change in ({"price": 999}, {"username": "mallory"}, {"item": "yacht"}):
        refused = buy(running_system, {**body, **change}, key)
        assert refused.status_code == 422, refused.text
        error = refused.json()
        assert key in error["error"] and error["key"] == key and error["field"] == "Idempotency-Key"
    until(lambda: running_system.stored_ids_for(body["userId"]), 15, "the purchase to be stored")
    stored = list(running_system.collection.find({"userId": body["userId"]}))
    assert [(d["_id"], d["price"], d["username"]) for d in stored] == [(first.json()["id"], 10.0, "ann")]


def test_once_stored_a_retry_to_a_web_that_never_saw_the_key_answers_exactly_the_stored_purchase(system):
    system.start_api()
    system.start_web()
    body, key = {"username": "bo", "userId": f"idem-{uuid.uuid4()}", "price": 5.5}, str(uuid.uuid4())
    first = buy(system, body, key).json()["purchase"]
    until(lambda: system.stored_ids_for(body["userId"]), 15, "the purchase to be stored")
    end_offsets = system.end_offset_total()

    system.web.stop()  # a restarted (or another) web replica: it has no memory of the key
    system.start_web()
    again = buy(system, body, key)
    assert again.status_code == 202 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["purchase"] == first
    assert system.end_offset_total() == end_offsets, "a stored purchase was published again"
    assert buy(system, {**body, "price": 6}, key).status_code == 422
    assert system.stored_ids_for(body["userId"]) == [first["id"]]


def test_users_dot_and_dot_dot_buy_and_read_their_own_history_through_web(running_system):
    web = running_system.web_url
    ids = {}
    for user in (".", ".."):
        answer = requests.post(f"{web}/api/buy", json={"username": "dot", "userId": user, "price": 3}, timeout=10)
        assert answer.status_code == 202
        ids[user] = answer.json()["id"]
    for user, encoded in ((".", "%2E"), ("..", "%2E%2E")):
        for path in (f"/api/user/{encoded}/purchases", f"/api/getAllUserBuys/{encoded}"):
            until(lambda path=path, user=user: [p["id"] for p in requests.get(web + path, timeout=5).json()]
                  == [ids[user]], 15,
                  f"{user!r}'s own history at {path}")

"""End to end over HTTP: client -> web -> Kafka -> api -> FerretDB -> api -> web -> client."""

import uuid

import requests

from scripts.loadgen.keyed import accepted_ids, post_buys
from scripts.stack.waiting import until

from ..support import buy_body


def test_a_purchase_posted_to_web_is_visible_through_every_history_path(running_system):
    web, api = running_system.web_url, running_system.api_url
    response = requests.post(f"{web}/api/buy", json={"username": "elad", "userId": "e2e-555", "price": 12.00},
                             headers={"Host": "purchase.local"}, timeout=10)
    assert response.status_code == 202
    answer = response.json()
    assert answer["message"] and answer["id"] == answer["purchase"]["id"]

    paths = [f"{web}/api/getAllUserBuys/e2e-555", f"{web}/api/user/e2e-555/purchases",
             f"{api}/api/purchases/e2e-555", f"{api}/api/purchases?userId=e2e-555"]
    for url in paths:
        until(lambda url=url: requests.get(url, timeout=5).json() == [answer["purchase"]], 10,
              f"the purchase at {url}")
    assert answer["purchase"]["price"] == 12.0 and answer["purchase"]["item"]


def test_200_concurrent_buys_for_one_user_are_stored_exactly_200_times(running_system):
    user = f"burst-{uuid.uuid4()}"
    results = post_buys(running_system.web_url, [buy_body(user, price=1 + i) for i in range(200)], concurrency=200)
    accepted = accepted_ids(results)
    assert len(accepted) == 200 == len(set(accepted))

    def history():
        return requests.get(f"{running_system.web_url}/api/user/{user}/purchases", params={"limit": 1000},
                            timeout=10).json()
    until(lambda: len(history()) >= 200, 20, "200 purchases in the history")
    assert sorted(p["id"] for p in history()) == sorted(accepted)
    assert running_system.collection.count_documents({"userId": user}) == 200


def test_the_same_idempotency_key_twice_is_one_purchase(running_system):
    user, key = f"retrier-{uuid.uuid4()}", str(uuid.uuid4())
    first, second = (
        requests.post(f"{running_system.web_url}/api/buy", json=buy_body(user), headers={"Idempotency-Key": key},
                      timeout=10)
        for _ in range(2)
    )
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = requests.post(f"{running_system.web_url}/api/buy", json=buy_body(user),
                          headers={"Idempotency-Key": key + "-other"}, timeout=10)
    until(lambda: running_system.collection.count_documents({"userId": user}) == 2, 15, "both purchases")
    assert sorted(running_system.stored_ids_for(user)) == sorted([first.json()["id"], other.json()["id"]])


def test_web_answers_503_json_for_history_when_api_is_down(system):
    system.start_web()  # api never started
    response = requests.get(f"{system.web_url}/api/getAllUserBuys/555", timeout=10)
    assert response.status_code == 503
    assert "api" in response.json()["error"]
    assert response.headers["Retry-After"]

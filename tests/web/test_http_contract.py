"""web's HTTP contract over real HTTP, with real Kafka and FerretDB behind it: bad input never gets in."""

import base64
import json
import time
from urllib.parse import quote

import pytest
import requests

from scripts.stack.waiting import until

from ..support import buy_body

GOOD = {"username": "elad", "userId": "555", "price": 12.0}

BAD_BODIES = [
    ("missing username", {"userId": "1", "price": 1}, "username"),
    ("missing userId", {"username": "a", "price": 1}, "userId"),
    ("missing price", {"username": "a", "userId": "1"}, "price"),
    ("userId a number", {**GOOD, "userId": 555}, "userId"),
    ("userId an operator", {**GOOD, "userId": {"$ne": None}}, "userId"),
    ("username null", {**GOOD, "username": None}, "username"),
    ("userId empty", {**GOOD, "userId": ""}, "userId"),
    ("username blank", {**GOOD, "username": "   "}, "username"),
    ("userId too long", {**GOOD, "userId": "x" * 129}, "userId"),
    ("price a string", {**GOOD, "price": "12.00"}, "price"),
    ("price a boolean", {**GOOD, "price": True}, "price"),
    ("price null", {**GOOD, "price": None}, "price"),
    ("price zero", {**GOOD, "price": 0}, "price"),
    ("price negative", {**GOOD, "price": -12}, "price"),
    ("price absurd", {**GOOD, "price": 1_000_000.01}, "price"),
    ("price below a cent", {**GOOD, "price": 5e-324}, "price"),
    ("username with a C1 control", {**GOOD, "username": "a\u0085b"}, "control"),
    ("userId with a bidi override", {**GOOD, "userId": "abc\u202etxt"}, "bidirectional"),
    ("username zero-width only", {**GOOD, "username": "\u200b\u200d"}, "visible"),
    ("item a noncharacter", {**GOOD, "item": "lamp\ufffe"}, "noncharacter"),
    ("not an object", [GOOD], "object"),
]

BAD_RAW = [
    ("trailing comma", b'{"username": "a", "userId": "1", "price": 1,}'),
    ("NaN", b'{"username": "a", "userId": "1", "price": NaN}'),
    ("Infinity", b'{"username": "a", "userId": "1", "price": Infinity}'),
    ("overflowing exponent", b'{"username": "a", "userId": "1", "price": 1e999}'),
    ("not JSON", b"username=a&userId=1&price=1"),
    ("empty", b""),
]


def post(system, data: bytes, content_type: str | None = "application/json", **headers) -> requests.Response:
    if content_type:
        headers["Content-Type"] = content_type
    return requests.post(f"{system.web_url}/api/buy", data=data, headers=headers, timeout=10)


def assert_json_error(response: requests.Response, status: int, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error, str) and mentions in error


@pytest.mark.parametrize("case, body, mentions", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_a_bad_body_gets_a_400_json_error_naming_the_problem(running_system, case, body, mentions):
    assert_json_error(post(running_system, json.dumps(body).encode()), 400, mentions)


@pytest.mark.parametrize("case, raw", BAD_RAW, ids=[c[0] for c in BAD_RAW])
def test_a_body_that_is_not_strict_json_gets_a_400(running_system, case, raw):
    assert_json_error(post(running_system, raw), 400)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_gets_a_415(running_system, content_type):
    assert_json_error(post(running_system, json.dumps(GOOD).encode(), content_type), 415, "application/json")


def test_a_body_over_64_kib_gets_a_413(running_system):
    big = json.dumps({**GOOD, "padding": "x" * 70_000}).encode()
    assert_json_error(post(running_system, big), 413, "too large")


def test_a_bad_idempotency_key_gets_a_400(running_system):
    response = post(running_system, json.dumps(GOOD).encode(), **{"Idempotency-Key": "x" * 300})
    assert_json_error(response, 400, "Idempotency-Key")


def test_nothing_is_published_for_a_bad_request_and_a_good_one_beside_it_is(running_system):
    """Measured in this test against a baseline taken in it, with a good buy as the control (so a count that
    cannot move would be seen)."""
    before = running_system.end_offset_total()
    for case, body, _ in BAD_BODIES:
        assert post(running_system, json.dumps(body).encode()).status_code == 400, case
    for case, raw in BAD_RAW:
        assert post(running_system, raw).status_code == 400, case
    assert post(running_system, json.dumps(GOOD).encode(), "text/plain").status_code == 415
    assert post(running_system, json.dumps({**GOOD, "padding": "x" * 70_000}).encode()).status_code == 413
    time.sleep(1)  # a publish would have landed by now
    assert running_system.end_offset_total() == before, "a refused buy reached Kafka"
    assert post(running_system, json.dumps(GOOD).encode()).status_code == 202
    assert until(lambda: running_system.end_offset_total() == before + 1, 10, "the good buy published")


def test_unknown_paths_and_methods_answer_json(running_system):
    assert_json_error(requests.get(f"{running_system.web_url}/nope", timeout=5), 404)
    response = requests.get(f"{running_system.web_url}/api/buy", timeout=5)
    assert_json_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_an_unknown_user_has_an_empty_history(running_system):
    response = requests.get(f"{running_system.web_url}/api/getAllUserBuys/nobody-at-all", timeout=5)
    assert (response.status_code, response.json()) == (200, [])


def test_user_ids_are_matched_literally_never_as_patterns_or_operators(running_system):
    users = [".*", "%25", "a/b", "Ünïcode ✓", "literal-victim"]
    ids = {}
    for user in users:
        response = requests.post(f"{running_system.web_url}/api/buy", json=buy_body(user), timeout=10)
        assert response.status_code == 202
        ids[user] = response.json()["id"]

    def history(user_id: str) -> list:
        response = requests.get(f"{running_system.web_url}/api/user/{quote(user_id, safe='')}/purchases", timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    for user in users:
        until(lambda user=user: [p["id"] for p in history(user)] == [ids[user]], 15,
              f"{user!r} to see only its purchase")
    assert history('{"$ne": null}') == []
    assert history("%") == []


def test_history_pages_newest_first_with_the_before_cursor(running_system):
    url = running_system.web_url
    made = [requests.post(f"{url}/api/buy", json=buy_body("pager", price=i + 1), timeout=10).json()["id"]
            for i in range(5)]
    until(lambda: len(requests.get(f"{url}/api/user/pager/purchases", timeout=5).json()) == 5, 15, "5 stored")

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"before": cursor} if cursor else {})}
        response = requests.get(f"{url}/api/user/pager/purchases", params=params, timeout=5)
        page = response.json()
        assert len(page) <= 2
        seen.extend(page)
        cursor = response.headers.get("X-Next-Before")
        if not cursor:
            break
    assert [p["id"] for p in seen] == list(reversed(made))
    timestamps = [p["timestamp"] for p in seen]
    assert timestamps == sorted(timestamps, reverse=True)


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "before=forged"])
def test_bad_paging_parameters_get_a_400(running_system, query):
    response = requests.get(f"{running_system.web_url}/api/user/555/purchases?{query}", timeout=5)
    assert_json_error(response, 400)


CRAFTED_CURSORS = {
    "before year 1 in UTC": b'["0001-01-01T00:00:00+01:00","x"]',
    "deeply nested": b"[" * 2000 + b"]" * 2000,  # beyond both JSON parsers' depth, within a request line
    "lone surrogate": b'["2026-01-01T00:00:00Z","\\udc80"]',
}


@pytest.mark.parametrize("raw", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
@pytest.mark.parametrize("service", ["web", "api"])
def test_crafted_cursors_get_a_400_from_api_and_web_passes_it_through(running_system, service, raw):
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    base = running_system.web_url + "/api/user/555/purchases" if service == "web" else \
        running_system.api_url + "/api/purchases/555"
    response = requests.get(base, params={"before": cursor}, timeout=10)
    assert_json_error(response, 400, "before")

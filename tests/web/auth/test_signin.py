"""Sign-in against a real OpenID provider (Keycloak): customers buy and read only as themselves, and web keeps
verifying while the provider rotates its keys or is frozen.

Tokens come from the provider's token endpoint (the password grant of the page's public client); web knows
nothing of them but what the provider's discovery document and keys say.
"""

from __future__ import annotations

import signal
import time
import uuid

import jwt
import requests

from scripts.loadgen.keyed import Traffic
from scripts.stack.waiting import until

from .conftest import JWKS_REFRESH_S, bearer


def buy(url: str, token: str, key: str | None = None, **body) -> requests.Response:
    headers = bearer(token, **({"Idempotency-Key": key} if key else {}))
    return requests.post(f"{url}/api/buy", json={"price": 5.0, **body}, headers=headers, timeout=15)


def history(url: str, token: str, customer: str) -> requests.Response:
    return requests.get(f"{url}/api/user/{customer}/purchases", headers=bearer(token), timeout=15)


def test_two_customers_each_buy_and_read_only_their_own_history(signed_in):
    url = signed_in.system.web_url
    alice, bob = signed_in.token("alice"), signed_in.token("bob")
    alice_id, bob_id = signed_in.customer_of(alice), signed_in.customer_of(bob)
    assert alice_id != bob_id

    alice_ids = [buy(url, alice).json()["id"] for _ in range(5)]
    bob_ids = [buy(url, bob, userId=bob_id).json()["id"] for _ in range(3)]  # naming oneself is fine
    bought = buy(url, alice)
    assert bought.status_code == 202
    assert bought.json()["purchase"]["userId"] == alice_id
    # The token's name (its `name` claim, else preferred_username), whatever the body says.
    assert bought.json()["purchase"]["username"] == jwt.decode(alice, options={"verify_signature": False})["name"]
    renamed = buy(url, alice, username="someone else")
    assert renamed.status_code == 202
    assert renamed.json()["purchase"]["username"] == bought.json()["purchase"]["username"]
    alice_ids.append(renamed.json()["id"])
    alice_ids.append(bought.json()["id"])

    def stored(token, customer, count):
        answer = history(url, token, customer)
        return answer.status_code == 200 and len(answer.json()) == count and answer.json()
    mine = until(lambda: stored(alice, alice_id, 7), 20, "alice's seven purchases in her history")
    assert sorted(p["id"] for p in mine) == sorted(alice_ids)
    theirs = until(lambda: stored(bob, bob_id, 3), 20, "bob's three purchases in his history")
    assert sorted(p["id"] for p in theirs) == sorted(bob_ids)

    # Neither can read the other's history, on either path, nor buy in the other's name.
    for path in (f"/api/user/{bob_id}/purchases", f"/api/getAllUserBuys/{bob_id}"):
        refused = requests.get(f"{url}{path}", headers=bearer(alice), timeout=15)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "you may only read your own purchases"
    refused = buy(url, bob, userId=alice_id, username="bob")
    assert refused.status_code == 403 and refused.json()["field"] == "userId"
    # Without a token: 401 on every customer path, with the scheme in WWW-Authenticate.
    for response in (requests.get(f"{url}/api/getAllUserBuys/{alice_id}", timeout=15),
                     requests.post(f"{url}/api/buy", json={"userId": alice_id, "username": "x", "price": 1},
                                   timeout=15)):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
        assert response.json()["error"] == "invalid_token"
    # Nothing was stored for the refused requests: each history is exactly what its customer bought.
    assert sorted(signed_in.system.stored_ids_for(alice_id)) == sorted(alice_ids)
    assert sorted(signed_in.system.stored_ids_for(bob_id)) == sorted(bob_ids)


def test_the_same_idempotency_key_from_two_customers_makes_two_purchases(signed_in):
    url = signed_in.system.web_url
    alice, bob = signed_in.token("alice"), signed_in.token("bob")
    key = str(uuid.uuid4())
    first, again = buy(url, alice, key, item="lamp"), buy(url, alice, key, item="lamp")
    other = buy(url, bob, key, item="lamp")
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"]  # alice's retry: her purchase
    assert other.json()["id"] != first.json()["id"]  # bob's: his own
    assert other.json()["purchase"]["userId"] == signed_in.customer_of(bob)


def health_and_metrics_need_no_token(url: str, metrics_url: str) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/auth/config", "/"):
        assert requests.get(f"{url}{path}", timeout=15).status_code == 200, path
    assert requests.get(metrics_url, timeout=15).status_code == 200


def test_health_metrics_and_the_documents_stay_open_and_openapi_declares_the_bearer_scheme(signed_in):
    url = signed_in.system.web_url
    health_and_metrics_need_no_token(url, signed_in.system.web.metrics_url)
    document = requests.get(f"{url}/openapi.json", timeout=15).json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/api/buy"]["post"]["security"] == [{"bearer": []}]
    assert "401" in document["paths"]["/api/getAllUserBuys/{userId}"]["get"]["responses"]
    settings = requests.get(f"{url}/auth/config", timeout=15).json()
    assert settings["issuer"] == signed_in.issuer and settings["clientId"] == signed_in.shop.client_id
    assert settings["authorizationEndpoint"].startswith(signed_in.issuer)


def signed_in_traffic(url: str, token: str) -> Traffic:
    """Keyed buys, ten at a time, with whichever token the traffic's headers hold when each is sent (the customer
    is the token's: the body names none)."""
    return Traffic(url, burst=10, pause_s=0.05, run=f"signed-in-{uuid.uuid4().hex[:8]}", headers=bearer(token),
                   order=lambda i, users: {"username": "x", "price": 3.0})


def assert_stored_once(signed_in, ids: list[str]) -> None:
    """Every accepted purchase stored (once: the purchase id is the document's `_id`, so the store cannot hold one
    twice; what can fail is a purchase missing)."""
    stored = until(lambda: (s := signed_in.system.stored_ids()) and set(ids) <= set(s) and s,
                   30, "every accepted purchase stored")
    assert not set(ids) - set(stored)


def test_a_key_rotation_at_the_provider_during_traffic_new_tokens_verify_and_nothing_fails(signed_in):
    url, provider, realm = signed_in.system.web_url, signed_in.provider, signed_in.shop.realm
    old_token = signed_in.token("alice")
    old_kid = provider.active_key_id(realm)
    with signed_in_traffic(url, old_token) as traffic:
        until(lambda: traffic.statuses().get(202, 0) >= 50, 30, "buys accepted before the rotation")
        new_kid = provider.add_signing_key(realm, priority=1000 + int(time.time()) % 1000)
        new_token = signed_in.token("alice")
        traffic.headers = bearer(new_token)  # from now on, a token signed by a key web has never seen
        until(lambda: traffic.statuses(**bearer(new_token)).get(202, 0) >= 50, 30, "buys accepted with the new key")
    print(f"\nrotation: old kid {old_kid[:8]}…, new kid {new_kid[:8]}…; "
          f"old token {traffic.statuses(**bearer(old_token))}, new token {traffic.statuses(**bearer(new_token))}")
    assert new_kid != old_kid and provider.active_key_id(realm) == new_kid
    assert signed_in.customer_of(new_token) == signed_in.customer_of(old_token)
    assert set(traffic.statuses()) == {202}, traffic.statuses()  # not one 401 or 5xx, before, during or after
    assert_stored_once(signed_in, traffic.accepted_ids())


def test_the_provider_frozen_cached_keys_still_verify_and_a_new_key_is_401_until_it_is_back(signed_in):
    url, provider, realm = signed_in.system.web_url, signed_in.provider, signed_in.shop.realm
    known = signed_in.token("bob")
    assert buy(url, known).status_code == 202  # web now holds this token's key
    provider.add_signing_key(realm, priority=3000 + int(time.time()) % 1000)
    unseen = signed_in.token("bob")  # signed by a key web has not fetched
    time.sleep(JWKS_REFRESH_S)  # the fetch interval has passed: web will try the provider for the new kid
    provider.signal_all(signal.SIGSTOP)
    try:
        with signed_in_traffic(url, known) as traffic:
            started = time.monotonic()
            refused = buy(url, unseen)
            waited = time.monotonic() - started
            until(lambda: traffic.statuses().get(202, 0) >= 50, 30, "buys with the cached key while frozen")
            again = buy(url, unseen)
    finally:
        provider.signal_all(signal.SIGCONT)
    print(f"\nprovider frozen: known-key token {traffic.statuses()}; unseen-key token {refused.status_code} after "
          f"{waited:.1f} s, then {again.status_code}")
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token", refused.text
    assert refused.json()["error_description"] == "the token's signing key is not one of the provider's"
    assert waited < 10  # the fetch gives up after 3 s: an answer, not a hang
    assert again.status_code == 401
    assert set(traffic.statuses()) == {202}, traffic.statuses()
    health_and_metrics_need_no_token(url, signed_in.system.web.metrics_url)
    # Back: the next fetch (at most one interval later) brings the new key, and the token verifies.
    until(lambda: buy(url, unseen).status_code == 202, JWKS_REFRESH_S + 20, "the new key verified once back")
    assert_stored_once(signed_in, traffic.accepted_ids())


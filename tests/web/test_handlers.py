"""web's handlers in-process (aiohttp's test client, make check): what a client is answered for what it sends, with a
publisher and a history client that are plain objects of this module. Nothing here claims to test Kafka or api:
test_http_contract.py does that against the real ones."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from services.core.config import WebConfig
from services.web.app import AUTHENTICATOR, create_app
from services.web.auth.tokens import signing_keys
from services.web.kafka_probe import KafkaState
from services.web.openapi import document

pytestmark = pytest.mark.unit


class Published:
    """A publisher that takes every purchase at once, and remembers them."""

    def __init__(self) -> None:
        self.purchases = []
        self.kafka, self.ready, self.started, self.wedged = KafkaState(True), True, True, False

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def deadline(self) -> float:
        return asyncio.get_running_loop().time() + 4

    async def publish(self, purchase, deadline=None) -> None:
        self.purchases.append(purchase)


class NoHistory:
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def stored_purchase(self, user_id, purchase_id, timeout_s):
        return None

    async def purchases(self, user_id, query):
        return 200, b"[]", {}


def call(env: dict, *requests, keys=None):
    """Each (method, path, kwargs) against a fresh web app; (status, headers, body) each, and what was published."""
    config = WebConfig.from_env({"LAG_EXPORT_INTERVAL_S": "0", **env})
    published = Published()

    async def run():
        app = create_app(config, publisher=published, history_client=NoHistory())
        async with TestClient(TestServer(app)) as client:
            if keys is not None:
                app[AUTHENTICATOR].keys.keys = keys  # the provider's key set, as if fetched
            answers = []
            for method, path, kwargs in requests:
                response = await client.request(method, path, **kwargs)
                answers.append((response.status, response.headers, await response.read()))
            return answers
    return asyncio.run(run()), published.purchases


def buy(body=None, **kwargs):
    return ("POST", "/api/buy", {"json": body or {"username": "ann", "userId": "u1", "price": 3.5}, **kwargs})


def test_a_valid_buy_is_published_and_answered_202_with_its_id():
    [(status, _, body)], published = call({}, buy())
    assert status == 202 and [p.user_id for p in published] == ["u1"]
    assert published[0].id in body.decode()


@pytest.mark.parametrize("request_kwargs, status, words", [
    ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
    ({"json": {"username": "ann", "userId": "u1"}}, 400, "missing field"),
    ({"json": {"username": "ann", "userId": "u1", "price": -1}}, 400, "greater than 0"),
    ({"json": {"username": "ann", "userId": "u1", "price": 1, "item": "x" * 200}}, 400, "at most 128"),
    ({"data": b"x" * (65 * 1024), "headers": {"Content-Type": "application/json"}}, 413, "body too large"),
    ({"data": b"{}", "headers": {"Content-Type": "text/plain"}}, 415, "application/json"),
])
def test_bad_buys_are_refused_with_a_json_reason_and_nothing_published(request_kwargs, status, words):
    [(answered, headers, body)], published = call({}, ("POST", "/api/buy", request_kwargs))
    assert answered == status and headers["Content-Type"].startswith("application/json")
    assert words in body.decode() and published == []


def test_a_key_reused_for_another_purchase_is_422_and_the_first_stands():
    key = {"Idempotency-Key": "k-1"}
    answers, published = call({}, buy(headers=key), buy({"username": "ann", "userId": "u1", "price": 9}, headers=key))
    assert [status for status, _, _ in answers] == [202, 422] and len(published) == 1


def test_the_page_gets_its_security_headers_and_the_document_is_served():
    [(status, headers, _), (doc_status, _, doc)], _ = call({}, ("GET", "/", {}), ("GET", "/openapi.json", {}))
    assert status == 200 and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert doc_status == 200 and b'"openapi":"3.1.0"' in doc


SIGN_IN = {"AUTH_MODE": "oidc", "OIDC_ISSUER": "http://127.0.0.1:9/realms/test", "OIDC_AUDIENCE": "web"}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS = signing_keys({"keys": [{**jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True),
                              "kid": "local", "alg": "RS256", "use": "sig"}]}).keys


def token(customer: str) -> dict:
    now = int(time.time())
    signed = jwt.encode({"iss": SIGN_IN["OIDC_ISSUER"], "aud": "web", "sub": customer, "exp": now + 60,
                         "name": f"{customer} smith"}, KEY, algorithm="RS256", headers={"kid": "local"})
    return {"Authorization": f"Bearer {signed}"}


def test_with_sign_in_a_token_is_needed_and_a_customer_buys_and_reads_only_as_themselves():
    answers, published = call(SIGN_IN, buy({"price": 2}), buy({"price": 2}, headers=token("ann")),
                              buy({"userId": "bob", "price": 2}, headers=token("ann")),
                              ("GET", "/api/user/bob/purchases", {"headers": token("ann")}),
                              ("GET", "/api/user/ann/purchases", {"headers": token("ann")}), keys=KEYS)
    statuses = [status for status, _, _ in answers]
    assert statuses == [401, 202, 403, 403, 200]
    assert answers[0][1]["WWW-Authenticate"].startswith('Bearer realm="purchase-system"')
    assert [(p.user_id, p.username) for p in published] == [("ann", "ann smith")]
    document_with_bearer = document(WebConfig.from_env(SIGN_IN).auth)
    assert "bearer" in document_with_bearer["components"]["securitySchemes"]

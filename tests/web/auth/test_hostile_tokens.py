"""Hostile bearer tokens against web with sign-in on, the provider real (Keycloak): each is refused with a 401
JSON answer and `WWW-Authenticate: Bearer`, never a 5xx, and nothing reaches Kafka.

The forgeries need a key the provider publishes whose private half the test holds: one is imported into the
realm (Keycloak's "rsa" key provider). A token signed with it and every claim right is accepted (the control
row), so each refusal below is for its one defect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.loadgen.keyed import post_buys
from scripts.stack.waiting import until

from ...support import samples
from .conftest import JWKS_REFRESH_S

TABLE: list[tuple[str, int, str]] = []


def b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def forger(signed_in):
    """(the private key the realm now publishes, its kid)."""
    key = new_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    kid = signed_in.provider.add_signing_key(signed_in.shop.realm, priority=1, private_key_pem=pem)
    return key, kid


def claims(signed_in, **changes) -> dict:
    now = int(time.time())
    base = {"iss": signed_in.issuer, "aud": signed_in.shop.audience, "sub": f"forged-{uuid.uuid4().hex[:8]}",
            "iat": now, "exp": now + 300}
    return {name: value for name, value in {**base, **changes}.items() if value is not None}


def signed(key, kid: str, payload: dict, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def raw_token(header: dict | bytes, payload: dict | bytes, signature: bytes = b"signature") -> str:
    return ".".join(b64(part) for part in (header, payload, signature))


def hostile_cases(signed_in, key, kid) -> dict[str, str | bytes | None]:
    """Case -> the Authorization header's value (None: no header; bytes: sent as they are)."""
    c = claims(signed_in)
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(c)}."
    # The algorithm-confusion forgery: HS256 "keyed" with the provider's public key, which anyone can fetch.
    confused_head = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(c)}"
    confused = confused_head + "." + b64(hmac.new(public_pem(key), confused_head.encode(), hashlib.sha256).digest())
    jwe = ".".join([b64({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": kid}), b64(b"k" * 256), b64(b"iv" * 6),
                    b64(b"ciphertext"), b64(b"tag" * 5)])
    master = signed_in.provider
    admin = requests.post(f"{master.address}/realms/master/protocol/openid-connect/token", timeout=10, data={
        "grant_type": "password", "client_id": "admin-cli", "username": "admin", "password": "admin-password"})
    good = signed(key, kid, c)
    deep = b"[" * 3000 + b"]" * 3000
    deep_header = raw_token(b'{"alg":"RS256","x":' + deep + b"}", c)
    deep_claims = raw_token({"alg": "RS256", "kid": kid}, b'{"x":' + deep + b"}")
    not_utf8_header = raw_token(b'{"alg":"RS256","kid":"\xff"}', c)
    id_token = jwt.encode(claims(signed_in, typ="ID"), key, algorithm="RS256", headers={"kid": kid})
    return {
        "no Authorization header": None,
        "alg none (unsigned)": f"Bearer {unsigned}",
        "HS256 signed with the public key as secret": f"Bearer {confused}",
        "signed by another key with the right kid": f"Bearer {signed(new_key(), kid, c)}",
        "unknown kid": f"Bearer {signed(new_key(), 'no-such-key-' + uuid.uuid4().hex, c)}",
        "RS512 on the RS256 key": f"Bearer {signed(key, kid, c, alg='RS512')}",
        "expired an hour ago": f"Bearer {signed(key, kid, claims(signed_in, exp=int(time.time()) - 3600))}",
        "not valid for an hour (nbf)": f"Bearer {signed(key, kid, claims(signed_in, nbf=int(time.time()) + 3600))}",
        "no exp": f"Bearer {signed(key, kid, claims(signed_in, exp=None))}",
        "wrong issuer": f"Bearer {signed(key, kid, claims(signed_in, iss=master.issuer('master')))}",
        "wrong audience": f"Bearer {signed(key, kid, claims(signed_in, aud='someone-else'))}",
        "no customer claim (sub)": f"Bearer {signed(key, kid, claims(signed_in, sub=None))}",
        "a real token of the provider's master realm": f"Bearer {admin.json()['access_token']}",
        "a 16 KiB header": "Bearer " + "A" * 16 * 1024,
        "garbage base64": "Bearer !!!.@@@.###",
        "a JWE where a JWS is expected": f"Bearer {jwe}",
        "Basic scheme": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=",
        # Found by a review as an attacker: each of these answered 500 before.
        "alg as a list": f"Bearer {raw_token({'alg': [], 'kid': kid}, c)}",
        "alg as an object": f"Bearer {raw_token({'alg': {'RS256': True}, 'kid': kid}, c)}",
        "kid as a list": f"Bearer {raw_token({'alg': 'RS256', 'kid': [kid]}, c)}",
        "header nested 3,000 deep": f"Bearer {deep_header}",
        "claims nested 3,000 deep": f"Bearer {deep_claims}",
        "non-UTF-8 bytes in the header value": b"Bearer \xff\xfe" + good.encode()[2:],
        "non-UTF-8 bytes in the token's header": f"Bearer {not_utf8_header}",
        "padding after a base64url segment": f"Bearer {good}==",
        "junk after a base64url segment": f"Bearer {good}%00",
        "an ID token (typ ID) used as an access token": f"Bearer {id_token}",
    }


CASES = ["no Authorization header", "alg none (unsigned)", "HS256 signed with the public key as secret",
         "signed by another key with the right kid", "unknown kid", "RS512 on the RS256 key", "expired an hour ago",
         "not valid for an hour (nbf)", "no exp", "wrong issuer", "wrong audience", "no customer claim (sub)",
         "a real token of the provider's master realm", "a 16 KiB header", "garbage base64",
         "a JWE where a JWS is expected", "Basic scheme", "alg as a list", "alg as an object", "kid as a list",
         "header nested 3,000 deep", "claims nested 3,000 deep", "non-UTF-8 bytes in the header value",
         "non-UTF-8 bytes in the token's header", "padding after a base64url segment",
         "junk after a base64url segment", "an ID token (typ ID) used as an access token"]


@pytest.fixture(scope="module")
def hostile(signed_in, forger):
    """The forger's key accepted first (the control row: each refusal below is for its one defect), then the cases;
    the table is printed at the end of the module."""
    url = signed_in.system.web_url
    key, kid = forger

    def buy_with_control() -> requests.Response | None:
        answer = requests.post(f"{url}/api/buy", json={"price": 2.0}, timeout=15,
                               headers={"Authorization": f"Bearer {signed(key, kid, claims(signed_in))}"})
        return answer if answer.status_code == 202 else None
    # web fetches the provider's keys again for a new kid once the interval since the last fetch has passed.
    accepted = until(buy_with_control, JWKS_REFRESH_S + 10, "the forger's key accepted by web")
    TABLE.append(("control: the imported key, every claim right", accepted.status_code, "purchase accepted"))
    cases = hostile_cases(signed_in, key, kid)
    assert sorted(cases) == sorted(CASES)
    yield cases
    print("\ncase -> status (reason)")
    for case, status, reason in TABLE:
        print(f"  {case:48} {status}  {reason}")


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_token_is_refused_401_json_with_the_challenge_and_nothing_is_published(signed_in, hostile, case):
    url, system = signed_in.system.web_url, signed_in.system
    authorization = hostile[case]
    published = system.end_offset_total()  # the baseline, taken in this very test
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    if authorization is not None:
        headers["Authorization"] = authorization
    answer = requests.post(f"{url}/api/buy", json={"username": "mallory", "userId": "victim", "price": 1.0},
                           headers=headers, timeout=15)
    read = requests.get(f"{url}/api/getAllUserBuys/victim", headers=headers, timeout=15)
    TABLE.append((case, answer.status_code, answer.json().get("error_description", answer.text[:60])))
    assert answer.status_code == 401, (case, answer.status_code, answer.text)
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"] == "invalid_token"
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="purchase-system"')
    assert ('error="invalid_token"' in answer.headers["WWW-Authenticate"]) == (authorization is not None)
    assert read.status_code == 401, (case, read.status_code)
    assert system.end_offset_total() == published, "a hostile buy reached Kafka"
    assert "Traceback" not in system.log("web"), "web logged a traceback"


def fetches(metrics_url: str) -> float:
    return sum(value for labels, value in samples(metrics_url, "oidc_jwks_fetches_total"))


def test_a_thousand_unknown_kids_in_a_row_cost_a_fetch_per_interval_not_a_thousand(signed_in):
    url = signed_in.system.web_url
    liar = new_key()
    tokens = [signed(liar, f"made-up-{i}", claims(signed_in)) for i in range(1000)]
    before = fetches(signed_in.system.web.metrics_url)
    started = time.monotonic()
    results = post_buys(url, [{"price": 1.0}] * len(tokens), concurrency=50,
                        headers=[{"Authorization": f"Bearer {t}"} for t in tokens])
    elapsed = time.monotonic() - started
    made = fetches(signed_in.system.web.metrics_url) - before
    print(f"\n1,000 unknown kids in {elapsed:.1f} s: {made:.0f} key fetches (at most one per {JWKS_REFRESH_S} s)")
    assert [status for status, _ in results] == [401] * len(tokens)
    assert made <= elapsed / JWKS_REFRESH_S + 1

"""The token rules of services/web/auth/tokens.py, without a server: keys made here, PyJWT signing."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from services.core.config import AuthConfig
from services.web.auth.rules import Customer
from services.web.auth.tokens import (
    TokenRefused,
    UnknownKey,
    VerifiedTokens,
    Verifier,
    signing_keys,
)

CONFIG = AuthConfig(mode="oidc", issuer="https://id.example/realms/shop", audience="purchase-web")
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key, kid: str, **extra) -> dict:
    entry = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**entry, "kid": kid, "use": "sig", "alg": "RS256", **extra}


def token(key=RSA_KEY, kid="k1", alg="RS256", **changes) -> str:
    now = int(time.time())
    claims = {"iss": CONFIG.issuer, "aud": CONFIG.audience, "sub": "customer-1", "exp": now + 60, "iat": now,
              "preferred_username": "ann", **changes}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


KEYS = signing_keys({"keys": [jwk(RSA_KEY, "k1")]})


def test_a_token_with_every_claim_right_names_its_customer_and_expiry():
    customer = Verifier(CONFIG).verify(token(), KEYS)
    assert (customer.id, customer.name) == ("customer-1", "ann")
    assert customer.expires > time.time()


def test_the_customer_claim_is_configurable():
    config = AuthConfig(**{**CONFIG.__dict__, "customer_claim": "preferred_username"})
    assert Verifier(config).verify(token(), KEYS).id == "ann"


@pytest.mark.parametrize("changes, reason", [
    ({"exp": -120}, "expired"),  # exp and nbf: seconds from now, when the test runs
    ({"nbf": 120}, "not valid yet"),
    ({"iss": "https://other.example"}, "another issuer"),
    ({"aud": "another-service"}, "audience"),
    ({"sub": None}, "names no customer"),
    ({"sub": "  "}, "names no customer"),
    ({"exp": None}, "no 'exp'"),
])
def test_each_wrong_claim_is_refused_with_its_reason(changes, reason):
    now = int(time.time())
    changes = {k: now + v if k in ("exp", "nbf") and v is not None else v for k, v in changes.items()}
    with pytest.raises(TokenRefused, match=reason):
        Verifier(CONFIG).verify(token(**changes), KEYS)


def test_the_leeway_forgives_a_little_clock_skew_and_no_more():
    skewed = token(exp=int(time.time()) - 20)
    assert Verifier(CONFIG).verify(skewed, KEYS).id == "customer-1"  # 30 s by default
    strict = AuthConfig(**{**CONFIG.__dict__, "leeway_s": 5})
    with pytest.raises(TokenRefused, match="expired"):
        Verifier(strict).verify(skewed, KEYS)


def test_an_unknown_kid_is_told_apart_so_the_keys_can_be_fetched_again():
    with pytest.raises(UnknownKey) as refused:
        Verifier(CONFIG).verify(token(kid="k2"), KEYS)
    assert refused.value.kid == "k2"


def test_symmetric_and_none_algorithms_are_refused_before_any_key_is_looked_up():
    hs = jwt.encode({"sub": "x"}, "a-secret-of-32-bytes-or-more-....", algorithm="HS256", headers={"kid": "k1"})
    header, payload = (jwt.utils.base64url_encode(part).decode() for part in (b'{"alg":"none","kid":"k1"}',
                                                                                b'{"sub":"x"}'))
    unsigned = f"{header}.{payload}."
    for forged in (hs, unsigned):
        with pytest.raises(TokenRefused, match="only public-key signatures"):
            Verifier(CONFIG).verify(forged, KEYS)


def test_a_key_set_keeps_only_asymmetric_signature_keys_with_an_id():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "e1", "alg": "ES256"}
    keys = signing_keys({"keys": [
        jwk(RSA_KEY, "sig"), jwk(RSA_KEY, "enc", use="enc", alg="RSA-OAEP"), {**jwk(RSA_KEY, "x"), "kid": ""},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}, ec_jwk, "not a key"]})
    assert sorted(keys) == ["e1", "sig"]
    assert Verifier(CONFIG).verify(token(ec_key, "e1", "ES256"), keys).id == "customer-1"
    with pytest.raises(ValueError):
        signing_keys({"no": "keys"})


def test_verified_tokens_are_kept_until_they_expire_and_the_oldest_go_first():
    cache = VerifiedTokens(leeway_s=0, capacity=2)
    now = time.time()
    cache.put("a", Customer("a", None, now + 10))
    cache.put("b", Customer("b", None, now + 10))
    assert cache.get("a", now).id == "a"  # now the most recently used
    cache.put("c", Customer("c", None, now + 10))
    assert cache.get("b", now) is None and cache.get("a", now) is not None
    assert cache.get("a", now + 11) is None and len(cache) == 1  # expired: forgotten

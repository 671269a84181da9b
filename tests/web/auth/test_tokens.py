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

pytestmark = pytest.mark.unit  # make check: no server, no build

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


KEYS = signing_keys({"keys": [jwk(RSA_KEY, "k1")]}).keys


def test_a_token_with_every_claim_right_names_its_customer_its_expiry_and_its_key():
    customer = Verifier(CONFIG).verify(token(), KEYS)
    assert (customer.id, customer.name, customer.kid) == ("customer-1", "ann", "k1")
    assert customer.expires > time.time()
    assert Verifier(CONFIG).verify(token(name="Ann Smith"), KEYS).name == "Ann Smith"  # name before the username


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
    with pytest.raises(TokenRefused, match="only public-key signatures"):
        Verifier(CONFIG).verify(hs, KEYS)
    with pytest.raises(TokenRefused, match="not a signed JWT"):  # its signature segment is empty
        Verifier(CONFIG).verify(unsigned, KEYS)
    with pytest.raises(TokenRefused, match="only public-key signatures"):  # the same with a dummy signature
        Verifier(CONFIG).verify(unsigned + "c2ln", KEYS)


def test_a_key_set_keeps_only_asymmetric_signature_keys_with_an_id():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True), "kid": "e1", "alg": "ES256"}
    key_set = signing_keys({"keys": [
        jwk(RSA_KEY, "sig"), jwk(RSA_KEY, "enc", use="enc", alg="RSA-OAEP"), {**jwk(RSA_KEY, "x"), "kid": ""},
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}, ec_jwk, "not a key"]})
    keys = key_set.keys
    assert sorted(keys) == ["e1", "sig"]
    assert len(key_set.skipped) == 3  # no kid, an HMAC key, not an object; the encryption key is simply not ours
    assert Verifier(CONFIG).verify(token(ec_key, "e1", "ES256"), keys).id == "customer-1"
    with pytest.raises(ValueError):
        signing_keys({"no": "keys"})


def test_verified_tokens_are_kept_until_they_expire_and_the_oldest_go_first():
    cache = VerifiedTokens(leeway_s=0, max_age_s=300, capacity=2)
    now = time.time()
    cache.put("a", Customer("a", None, now + 10), now)
    cache.put("b", Customer("b", None, now + 10), now)
    assert cache.get("a", now).id == "a"  # now the most recently used
    cache.put("c", Customer("c", None, now + 10), now)
    assert cache.get("b", now) is None and cache.get("a", now) is not None
    assert cache.get("a", now + 11) is None and len(cache) == 1  # expired: forgotten


def test_a_verified_token_is_forgotten_with_its_key_and_lives_no_longer_than_the_key_sets_age():
    cache = VerifiedTokens(leeway_s=0, max_age_s=60)
    now = time.time()
    far = now + 10 * 365 * 86400  # a token that says it is good for ten years
    cache.put("old-key", Customer("a", None, far, kid="k-leaked"), now)
    cache.put("new-key", Customer("b", None, far, kid="k2"), now)
    assert cache.key_set_fetched({"k2"}, now + 5) == 1  # the provider withdrew k-leaked
    assert cache.get("old-key", now + 6) is None and cache.get("new-key", now + 6).id == "b"
    # Checked against that fresh key set at +5: good until +65, then verified again (whatever its exp says).
    assert cache.get("new-key", now + 64) is not None and cache.get("new-key", now + 66) is None
    cache.put("again", Customer("b", None, far, kid="k2"), now + 100)
    cache.key_set_fetched({"k2"}, now + 150)  # a later fresh key set still lists it: checked again
    assert cache.get("again", now + 200) is not None


def segments(*parts: bytes) -> str:
    return ".".join(jwt.utils.base64url_encode(part).decode() for part in parts)


@pytest.mark.parametrize("case, forged", [
    ("alg as a list", segments(b'{"alg":[],"kid":"k1"}', b"{}", b"sig")),
    ("alg as an object", segments(b'{"alg":{"RS256":1},"kid":"k1"}', b"{}", b"sig")),
    ("kid as a list", segments(b'{"alg":"RS256","kid":["k1"]}', b"{}", b"sig")),
    ("typ as a number", segments(b'{"alg":"RS256","kid":"k1","typ":7}', b"{}", b"sig")),
    ("a header nested 5,000 deep", segments(b'{"alg":"RS256","kid":"k1","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
                                            b"{}", b"sig")),
    ("a header that is not an object", segments(b'["RS256"]', b"{}", b"sig")),
    ("a header that is not UTF-8", segments(b'{"alg":"RS256","kid":"\xff\xfe"}', b"{}", b"sig")),
    ("padding after a segment", token() + "=="),
    ("junk after a segment", token() + "!"),
    ("a space inside", token()[:20] + " " + token()[20:]),
    ("four dots", token() + ".abc"),
])
def test_malformed_tokens_are_refused_never_raise_anything_else(case, forged):
    with pytest.raises(TokenRefused):
        Verifier(CONFIG).verify(forged, KEYS)


def test_deeply_nested_claims_are_a_refusal_too():
    payload = b'{"sub":"x","deep":' + b"[" * 5000 + b"]" * 5000 + b"}"
    header = b'{"alg":"RS256","kid":"k1"}'
    signing_input = segments(header, payload).encode()
    signature = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(signing_input, RSA_KEY)
    forged = signing_input.decode() + "." + jwt.utils.base64url_encode(signature).decode()
    with pytest.raises(TokenRefused):
        Verifier(CONFIG).verify(forged, KEYS)


@pytest.mark.parametrize("header_typ, claim_typ, accepted", [
    (None, None, True), ("JWT", "Bearer", True), ("at+jwt", None, True), ("JWT", "ID", False),
    (None, "Refresh", False), ("id_token+jwt", None, False),
])
def test_only_access_tokens_are_accepted(header_typ, claim_typ, accepted):
    now = int(time.time())
    claims = {"iss": CONFIG.issuer, "aud": CONFIG.audience, "sub": "c", "exp": now + 60,
              **({"typ": claim_typ} if claim_typ else {})}
    headers = {"kid": "k1", **({"typ": header_typ} if header_typ else {})}
    forged = jwt.encode(claims, RSA_KEY, algorithm="RS256", headers=headers)
    if accepted:
        assert Verifier(CONFIG).verify(forged, KEYS).id == "c"
    else:
        with pytest.raises(TokenRefused, match="not an access token"):
            Verifier(CONFIG).verify(forged, KEYS)


def test_the_authorized_party_is_checked_where_parties_are_named():
    config = AuthConfig(**{**CONFIG.__dict__, "authorized_parties": ("shop-web",)})
    assert Verifier(config).verify(token(azp="shop-web"), KEYS).id == "customer-1"
    for azp in ("another-client", None):
        with pytest.raises(TokenRefused, match="authorized party"):
            Verifier(config).verify(token(azp=azp), KEYS)
    assert Verifier(CONFIG).verify(token(azp="another-client"), KEYS)  # none named: not checked


def test_malformed_key_set_entries_are_skipped_and_the_others_kept():
    good = jwk(RSA_KEY, "good")
    key_set = signing_keys({"keys": [{**good, "kid": ["x"]}, {**good, "kid": "bad-n", "n": 5},
                                     {**good, "kid": "bad-e", "e": "!!"}, {"kid": "no-kty"}, good]})
    assert list(key_set.keys) == ["good"]
    assert len(key_set.skipped) == 4

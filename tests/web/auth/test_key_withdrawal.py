"""A key the provider withdraws (after a leak) stops working within web's key-set age, though the tokens it signed say
they are good for a year, and web had verified (and remembered) one a moment before. Against the real Keycloak."""

from __future__ import annotations

import time

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.stack.waiting import until

from .conftest import JWKS_REFRESH_S
from .test_signin import buy

# web's OIDC_JWKS_MAX_AGE_S in this module (conftest.py's signed_in reads it): the key set is fetched again, and a
# verified token re-checked, this often (300 s by default).
JWKS_MAX_AGE_S = 6
def test_a_withdrawn_keys_token_is_refused_within_the_key_sets_age_though_it_says_it_lives_a_year(signed_in):
    """After a leak: the provider removes the key. A token it signed, valid for a year and verified (cached) a
    moment before, is refused within OIDC_JWKS_MAX_AGE_S: the key set is fetched again on that period, and a fresh
    key set without the kid takes the token's cache entry with it."""
    url, provider, realm = signed_in.system.web_url, signed_in.provider, signed_in.shop.realm
    leaked = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = leaked.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()).decode()
    kid = provider.add_signing_key(realm, priority=1, private_key_pem=pem)  # published, not the active one
    now = int(time.time())
    token = jwt.encode({"iss": signed_in.issuer, "aud": signed_in.shop.audience, "sub": "carol", "iat": now,
                        "exp": now + 365 * 86400}, leaked, algorithm="RS256", headers={"kid": kid})
    until(lambda: buy(url, token).status_code == 202, JWKS_REFRESH_S + 10, "the key accepted by web")
    assert buy(url, token).status_code == 202  # verified, and remembered
    provider.withdraw_signing_key(realm, kid)
    withdrawn = time.monotonic()

    def refused_now() -> list[requests.Response]:  # a list: a 401 Response is falsy itself
        answer = buy(url, token)
        return [answer] if answer.status_code == 401 else []
    [refused] = until(refused_now, JWKS_MAX_AGE_S + 10, "the withdrawn key's token refused", interval=0.25)
    took = time.monotonic() - withdrawn
    print(f"\nwithdrawn key: first refusal {took:.1f} s after the withdrawal (key set age {JWKS_MAX_AGE_S} s); "
          f"{refused.json()['error_description']!r}")
    assert took <= JWKS_MAX_AGE_S + 3.5  # one period, and a fetch's timeout at most
    assert refused.json()["error_description"] == "the token's signing key is not one of the provider's"
    assert "verified tokens forgotten" in signed_in.system.log("web")

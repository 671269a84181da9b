"""A system with sign-in on, against the session's Keycloak: a realm of the module's own (its keys are rotated
by some tests), web started with AUTH_MODE=oidc for it, and the customers' tokens."""

from __future__ import annotations

from dataclasses import dataclass

import jwt
import pytest

from scripts.stack.keycloak import Keycloak, ShopRealm

from ...conftest import _restart_stopped
from ...support import System, sanitize

JWKS_REFRESH_S = 2  # web's minimum interval between key fetches in these tests (10 s by default)


@dataclass
class SignedIn:
    system: System
    provider: Keycloak
    shop: ShopRealm

    def token(self, username: str) -> str:
        customer = next(c for c in self.shop.customers if c.username == username)
        return self.provider.password_token(self.shop, customer.username, customer.password)

    @staticmethod
    def customer_of(token: str) -> str:
        """The customer a token names (web's default customer claim, `sub`), read without verifying."""
        return jwt.decode(token, options={"verify_signature": False})["sub"]

    @property
    def issuer(self) -> str:
        return self.provider.issuer(self.shop.realm)


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.fixture(scope="module")
def signed_in(request, keycloak, kafka, ferretdb, tmp_path_factory):
    _restart_stopped(kafka, ferretdb, keycloak)
    name = sanitize(request.module.__name__)
    system = System(name, kafka, ferretdb, tmp_path_factory.mktemp("signed-in"))
    origins = [f"http://127.0.0.1:{system.web_port}", f"http://localhost:{system.web_port}"]
    shop = keycloak.create_shop(ShopRealm(redirect_origins=origins, realm=f"shop-{name}"[:60]))
    system.start_api()
    # A module may name its own key-set age (JWKS_MAX_AGE_S); web's default, 300 s, otherwise.
    max_age = getattr(request.module, "JWKS_MAX_AGE_S", 300)
    system.start_web(env={**keycloak.web_settings(shop), "OIDC_JWKS_REFRESH_S": str(JWKS_REFRESH_S),
                          "OIDC_JWKS_MAX_AGE_S": str(max_age)})
    yield SignedIn(system, keycloak, shop)
    system.stop()

"""Keycloak, the OpenID provider web's sign-in is tested against (and `make dev AUTH=oidc` runs): its server
distribution from Maven Central (org.keycloak:keycloak-quarkus-dist), on the JDK, in-memory (nothing persists).

    provider = Keycloak(folder, port=8180).start()
    provider.create_shop(ShopRealm(redirect_origins=["http://127.0.0.1:8080"]))
    token = provider.password_token(realm, "alice", "alice-password")

The distribution is unpacked and `kc.sh build` run once into the cache, so each start is an optimized one
(about 30 s on 2 cores instead of a minute). Set up through its admin REST API with the bootstrap admin.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .errors import StackError
from .paths import CACHE, remove_tree, require
from .process import Server, step
from .token import access_token
from .waiting import http_ready

KEYCLOAK_VERSION = "26.7.3"
ADMIN = ("admin", "admin-password")  # the bootstrap admin of a throwaway, loopback-only server
KEY_PROVIDER = "org.keycloak.keys.KeyProvider"


def keycloak_home() -> Path:
    """The unpacked distribution, built for an in-memory database; fetched with Maven on first use."""
    home = CACHE / f"keycloak-{KEYCLOAK_VERSION}"
    if (home / ".complete").exists():
        return home
    require("java")
    mvn = require("mvn")
    download = CACHE / "keycloak-download"
    step([mvn, "-B", "-q", "dependency:copy",
         f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip", f"-DoutputDirectory={download}"],
        f"fetching Keycloak {KEYCLOAK_VERSION} from Maven Central (170 MiB)")
    if home.exists():
        remove_tree(home)
    with zipfile.ZipFile(download / f"keycloak-quarkus-dist-{KEYCLOAK_VERSION}.zip") as archive:
        archive.extractall(CACHE)  # the archive's top folder is keycloak-<version>
    for script in (home / "bin").glob("*.sh"):
        script.chmod(0o755)
    remove_tree(download)
    step([str(home / "bin" / "kc.sh"), "build", "--db=dev-mem"], "building Keycloak for an in-memory database",
        env=_java_env())
    (home / ".complete").touch()
    return home


def _java_env() -> dict[str, str]:
    # A small heap: its own default is 70 % of the machine's memory.
    return {**os.environ, "JAVA_OPTS_KC_HEAP": "-Xms64m -Xmx512m"}


@dataclass(frozen=True)
class Customer:
    username: str
    password: str
    first_name: str


@dataclass(frozen=True)
class ShopRealm:
    """The realm web's customers sign in to: one public client for the page (code flow with PKCE; the password
    grant too, for tests and load runs), issuing access tokens for the audience web checks."""

    redirect_origins: list[str]
    realm: str = "shop"
    client_id: str = "shop-web"
    audience: str = "purchase-web"
    customers: list[Customer] = field(default_factory=lambda: [Customer("alice", "alice-password", "Alice"),
                                                               Customer("bob", "bob-password", "Bob")])

    def representation(self) -> dict:
        return {
            "realm": self.realm, "enabled": True, "accessTokenLifespan": 300, "sslRequired": "none",
            "clients": [{
                "clientId": self.client_id, "publicClient": True, "standardFlowEnabled": True,
                "directAccessGrantsEnabled": True, "redirectUris": [f"{o}/*" for o in self.redirect_origins],
                "webOrigins": list(self.redirect_origins),
                "attributes": {"pkce.code.challenge.method": "S256",
                               "post.logout.redirect.uris": "##".join(f"{o}/*" for o in self.redirect_origins)},
                "protocolMappers": [{
                    "name": "audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
                    "config": {"included.custom.audience": self.audience, "access.token.claim": "true",
                               "id.token.claim": "false"},
                }],
            }],
            "users": [{
                "username": c.username, "enabled": True, "email": f"{c.username}@example.test",
                "emailVerified": True, "firstName": c.first_name, "lastName": "Shopper",
                "credentials": [{"type": "password", "value": c.password, "temporary": False}],
            } for c in self.customers],
        }


class Keycloak(Server):
    name = "keycloak"

    def __init__(self, data_dir: Path, port: int = 8180, host: str = "127.0.0.1") -> None:
        super().__init__(data_dir, port, host)
        self.home = keycloak_home()
        self.env = {**_java_env(), "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN[0], "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN[1]}

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def issuer(self, realm: str) -> str:
        return f"{self.address}/realms/{realm}"

    def command(self) -> list[str]:
        return [str(self.home / "bin" / "kc.sh"), "start", "--optimized", "--http-enabled=true",
                f"--http-host={self.host}", f"--http-port={self.port}", "--hostname-strict=false"]

    def popen_options(self) -> dict:
        return {"cwd": self.data_dir}

    def start(self, timeout: float = 180.0) -> Keycloak:
        super().start(timeout)
        return self

    def listening(self) -> bool:
        # Its port opens while it still answers 503 (bootstrapping): ready once the master realm is served.
        return http_ready(f"{self.issuer('master')}/.well-known/openid-configuration")

    def signal_all(self, signum: int) -> None:
        """A signal to kc.sh and the JVM it started (their process group): SIGSTOP freezes the provider."""
        os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal_all(signal.SIGKILL)
            self.process.wait()

    # --- set-up through the admin REST API ---

    def _admin_headers(self) -> dict[str, str]:
        response = requests.post(f"{self.address}/realms/master/protocol/openid-connect/token", timeout=10, data={
            "grant_type": "password", "client_id": "admin-cli", "username": ADMIN[0], "password": ADMIN[1]})
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, f"{self.address}/admin/realms{path}", headers=self._admin_headers(),
                                    timeout=30, **kwargs)
        if response.status_code >= 400:
            raise StackError(f"Keycloak {method} {path}: {response.status_code} {response.text[:300]}")
        return response

    def web_settings(self, shop: ShopRealm) -> dict[str, str]:
        """web's environment for sign-in against this realm."""
        return {"AUTH_MODE": "oidc", "OIDC_ISSUER": self.issuer(shop.realm), "OIDC_AUDIENCE": shop.audience,
                "OIDC_CLIENT_ID": shop.client_id}

    def create_shop(self, shop: ShopRealm) -> ShopRealm:
        self.admin("POST", "", json=shop.representation())
        return shop

    def active_key_id(self, realm: str) -> str:
        """The kid new tokens are signed with."""
        return self.admin("GET", f"/{realm}/keys").json()["active"]["RS256"]

    def add_signing_key(self, realm: str, priority: int, private_key_pem: str | None = None) -> str:
        """A new RS256 key for the realm, generated by Keycloak or (`private_key_pem`) ours; its kid. The key with
        the highest priority signs new tokens; the others stay published, so tokens they signed still verify."""
        realm_id = self.admin("GET", f"/{realm}").json()["id"]
        name = f"key-{time.monotonic_ns()}"
        config = {"priority": [str(priority)], "active": ["true"], "enabled": ["true"], "algorithm": ["RS256"]}
        if private_key_pem:
            config["privateKey"] = [private_key_pem]
        self.admin("POST", f"/{realm}/components", json={
            "name": name, "providerId": "rsa" if private_key_pem else "rsa-generated",
            "providerType": KEY_PROVIDER, "parentId": realm_id, "config": config})
        component = next(c for c in self.admin("GET", f"/{realm}/components", params={"name": name}).json())
        keys = self.admin("GET", f"/{realm}/keys").json()["keys"]
        return next(k["kid"] for k in keys if k.get("providerId") == component["id"] and k.get("use") == "SIG")

    def withdraw_signing_key(self, realm: str, kid: str) -> None:
        """Remove a key from the realm (as after a leak): it is no longer published, so nothing it signed verifies."""
        key = next(k for k in self.admin("GET", f"/{realm}/keys").json()["keys"] if k.get("kid") == kid)
        self.admin("DELETE", f"/{realm}/components/{key['providerId']}")

    def password_token(self, shop: ShopRealm, username: str, password: str) -> str:
        """An access token for a customer, by the password grant (tests and load runs; the page uses the code flow)."""
        return access_token(self.issuer(shop.realm), shop.client_id, username, password)

    def token_command(self, shop: ShopRealm, username: str, password: str) -> str:
        """A shell command printing such a token (load.py --token-command)."""
        return shlex.join([sys.executable, "-m", "scripts.stack.token", self.issuer(shop.realm), shop.client_id,
                           username, password])

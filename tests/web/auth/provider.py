"""An OpenID provider of the tests' own, for what a real one does only now and then: documents that arrive in pieces,
slowly (a remote or busy provider: chunked encoding, small TLS records), a key set with a malformed entry, a
document over web's size cap, an issuer with a trailing slash. It serves a discovery document and a key set (one RSA
key the test signs with), on 127.0.0.1, from a thread of its own. The sign-in tests against Keycloak cover the rest.
"""

from __future__ import annotations

import asyncio
import threading
import time

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from scripts.stack.process import free_port

KID = "piecewise-key"


class PiecewiseProvider:
    """`pieces` bytes at a time, `pause_s` apart. `extra_keys`: entries served before the good key (malformed ones,
    say). `jwks_padding`: bytes of whitespace added to the key set (over web's cap, say)."""

    def __init__(self, realm: str = "slow", pieces: int = 200, pause_s: float = 0.05, extra_keys: list | None = None,
                 jwks_padding: int = 0, trailing_slash: bool = False) -> None:
        self.port, self.elsewhere = free_port(), free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/realms/{realm}" + ("/" if trailing_slash else "")
        self.pieces, self.pause_s, self.jwks_padding = pieces, pause_s, jwks_padding
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [*(extra_keys or []), {**public, "kid": KID, "use": "sig", "alg": "RS256"}]}
        self.requests: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def token_endpoint(self) -> str:
        """On another origin than the issuer (a provider may keep it elsewhere)."""
        return f"http://127.0.0.1:{self.elsewhere}/token"

    def discovery(self) -> dict:
        base = self.issuer.rstrip("/")
        # Padded to the size of Keycloak's (about 6 KB), so it arrives in some thirty pieces.
        return {"issuer": self.issuer, "jwks_uri": f"{base}/certs", "token_endpoint": self.token_endpoint,
                "authorization_endpoint": f"{base}/auth", "end_session_endpoint": f"{base}/logout",
                "claims_supported": [f"claim-{i}" for i in range(400)]}

    def token(self, **claims) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": "purchase-web", "sub": "piecewise-customer", "iat": now, "exp": now + 300,
                **claims}
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": KID})

    def web_settings(self) -> dict[str, str]:
        return {"AUTH_MODE": "oidc", "OIDC_ISSUER": self.issuer, "OIDC_AUDIENCE": "purchase-web"}

    async def _send(self, request: web.Request, body: bytes) -> web.StreamResponse:
        self.requests.append(request.path)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), self.pieces):
            await response.write(body[start:start + self.pieces])
            await asyncio.sleep(self.pause_s)
        await response.write_eof()
        return response

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        return await self._send(request, orjson.dumps(self.discovery()))

    async def _certs(self, request: web.Request) -> web.StreamResponse:
        body = orjson.dumps(self.jwks)
        return await self._send(request, body[:-1] + b" " * self.jwks_padding + body[-1:])

    async def _serve(self) -> None:
        app = web.Application()
        base = "/" + self.issuer.split("/", 3)[3].rstrip("/")
        app.router.add_get(f"{base}/.well-known/openid-configuration", self._discovery)
        app.router.add_get(f"{base}/certs", self._certs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __enter__(self) -> PiecewiseProvider:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

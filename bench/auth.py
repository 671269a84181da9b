"""Phase `auth`: web's peak POST /api/buy with sign-in on (a real Keycloak's tokens) beside the same web with it
off and the bare handler, in the same run; and what verifying one token costs when no cache helps.

Both buy for one customer (a token names one), so the two peaks differ only by sign-in. One web runs at a time,
off and on alternately, twice each, and the better of each pair is kept: the machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import time

from scripts.stack.keycloak import Keycloak, ShopRealm
from scripts.stack.process import free_port
from scripts.stack.service import Names
from scripts.stack.system import System
from services.core.config import AuthConfig
from services.web.auth.keys import KeyStore
from services.web.auth.tokens import Verifier

from .measure import QUIET, load, say
from .web import Bare

VERIFICATIONS = 2000


def bench_auth(system: System, seconds: float) -> dict:
    provider = Keycloak(system.workdir / "keycloak", port=free_port())
    say("auth: starting Keycloak (about 30 s)")
    provider.start()
    try:
        shop = provider.create_shop(ShopRealm(redirect_origins=[]))
        command = provider.token_command(shop, "alice", "alice-password")
        settings = provider.web_settings(shop)
        burst = ["--burst", "1000000", "--duration", str(seconds), "--concurrency", "64", "--users", "1"]
        bare = Bare(system.workdir, free_port())
        bare.start()
        try:
            say("auth: ceiling (bare aiohttp handler)")
            load(f"http://127.0.0.1:{bare.port}", "--burst", "2000", "--concurrency", "64")
            ceiling = load(f"http://127.0.0.1:{bare.port}", *burst)
        finally:
            bare.stop()
        peaks: dict[str, list[float]] = {"off": [], "on": []}
        for mode in ("off", "on", "off", "on"):  # one web at a time, started afresh
            part = system.beside(Names.of(f"bench_auth_{mode}"), QUIET)
            part.create_topics()
            web = part.start_web(env=settings if mode == "on" else None)
            extra = ["--token-command", command] if mode == "on" else []
            try:
                say(f"auth: web's peak with sign-in {mode}")
                load(web.address, "--burst", "2000", "--concurrency", "64", *extra)
                result = load(web.address, *burst, *extra)
            finally:
                part.stop()
            if result["accepted"] != result["sent"]:
                raise RuntimeError(f"sign-in {mode}: {result['sent'] - result['accepted']} buys not accepted")
            peaks[mode].append(result["rate"])
        verify_us = uncached_verify_us(provider, shop)
    finally:
        provider.stop()
    off, on = max(peaks["off"]), max(peaks["on"])
    return {"rps_off": off, "rps_on": on, "ratio": round(on / off, 3), "ceiling_rps": ceiling["rate"],
            "runs_off": peaks["off"], "runs_on": peaks["on"], "uncached_verify_us": verify_us}


def uncached_verify_us(provider: Keycloak, shop: ShopRealm) -> float:
    """Microseconds to verify one real token from scratch (header, key look-up, RS256 signature, claims)."""
    config = AuthConfig(mode="oidc", issuer=provider.issuer(shop.realm), audience=shop.audience)
    token = provider.password_token(shop, "alice", "alice-password")

    async def keys():
        store = KeyStore(config.issuer, refresh_s=1, max_age_s=config.jwks_max_age_s)
        await store.start()
        await store.close()
        return store.keys
    held, verifier = asyncio.run(keys()), Verifier(config)
    started = time.perf_counter()
    for _ in range(VERIFICATIONS):
        verifier.verify(token, held)
    return round((time.perf_counter() - started) / VERIFICATIONS * 1e6, 1)

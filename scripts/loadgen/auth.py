"""--token-command: with web's sign-in on, every request carries a bearer token that a command of the user's
prints (for instance a curl to the provider's token endpoint). The customer is the token's, so the run's one
user is the token's customer claim; the command runs again when the token is within a minute of expiring.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt

from scripts.stack.errors import StackError
from scripts.stack.process import run

RENEW_BEFORE_S = 60.0


class TokenCommandError(RuntimeError):
    pass


class BearerToken:
    def __init__(self, command: str, customer_claim: str = "sub") -> None:
        self.command = command
        self.customer_claim = customer_claim
        self.token, self.customer, self._expires = "", "", 0.0
        self.renew()

    def renew(self) -> None:
        try:
            done = run(self.command, check=False, timeout=30, shell=True)
        except StackError as exc:  # it did not finish in time
            raise TokenCommandError(f"--token-command: {exc}") from None
        token = done.stdout.strip()
        if done.returncode != 0 or not token:
            raise TokenCommandError(f"--token-command exited {done.returncode} and printed no token: "
                                    f"{done.stderr.strip()[-300:]}")
        try:
            # Read, not verified: only web verifies tokens. The customer and expiry tell whom to send as, and when
            # to ask for a new token.
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise TokenCommandError(f"--token-command printed something that is not a JWT: {exc}") from None
        if not isinstance(claims.get(self.customer_claim), str):
            raise TokenCommandError(f"the token has no string '{self.customer_claim}' claim (--customer-claim)")
        self.token, self.customer = token, claims[self.customer_claim]
        self._expires = float(claims.get("exp", float("inf")))

    @property
    def header(self) -> str:
        return f"Bearer {self.token}"

    async def keep_fresh(self, session: aiohttp.ClientSession) -> None:
        """Until cancelled: a new token into the session's default headers a minute before the old one expires."""
        while True:
            await asyncio.sleep(max(1.0, self._expires - time.time() - RENEW_BEFORE_S))
            await asyncio.to_thread(self.renew)
            session.headers["Authorization"] = self.header

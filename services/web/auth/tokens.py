"""What makes a bearer token acceptable to web, decided without I/O.

A token is a JWS in compact form, signed with an asymmetric algorithm by one of the provider's keys, that
algorithm being the key's own; `iss` and `aud` are ours, `exp` has not passed and `nbf` has (each within the
leeway), and the customer claim is a valid user id. Everything else is refused with a reason a client may see.
The JOSE work (base64url, JSON, signature) is PyJWT's; this module only decides what to ask of it.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping

import jwt

from services.core.config import AuthConfig
from services.core.purchase import ValidationError, validate_user_id

from .rules import MAX_TOKEN_CHARS, Customer

# Only public-key signatures: a symmetric algorithm would let anyone who holds the public key sign (HS256
# "keyed" with it is the classic confusion attack), and "none" signs nothing.
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
CACHE_CAPACITY = 10_000


class TokenRefused(Exception):
    """The token cannot be accepted; `description` says why and is safe to send back."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class UnknownKey(TokenRefused):
    """Signed with a key id the provider's key set we hold does not have (yet)."""

    def __init__(self, kid: str) -> None:
        super().__init__("the token's signing key is not one of the provider's")
        self.kid = kid


def signing_key_id(token: str) -> str:
    """The `kid` of a token that is, on its face, a JWS we could accept; TokenRefused otherwise."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused(f"token longer than {MAX_TOKEN_CHARS} characters")
    if token.count(".") != 2:
        raise TokenRefused("not a signed JWT (a JWS in compact form has three parts; a JWE has five)")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRefused("the token's header is not base64url-encoded JSON") from None
    alg = header.get("alg")
    if alg not in ASYMMETRIC:
        raise TokenRefused("the token's algorithm is not accepted; only public-key signatures are")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRefused("the token names no signing key (kid)")
    return kid


def signing_keys(jwks: object) -> dict[str, jwt.PyJWK]:
    """The usable signature keys of a JWKS document, by kid: asymmetric, for signing, with an id."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys = {}
    for entry in jwks["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or not entry.get("kid"):
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:  # a key type or curve PyJWT cannot use: it could verify nothing for us
            continue
        if key.algorithm_name in ASYMMETRIC:
            keys[entry["kid"]] = key
    return keys


# PyJWT's verdicts, in words a client may see (the first that matches; subclasses before their bases).
REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidAlgorithmError, "the token's algorithm is not its key's"),
    (jwt.InvalidSignatureError, "signature verification failed"),
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidIssuerError, "the token was issued by another issuer"),
    (jwt.InvalidAudienceError, "the token is not meant for this service (audience)"),
)


def refusal(error: jwt.PyJWTError) -> str:
    return next((words for kind, words in REFUSALS if isinstance(error, kind)), "the token could not be decoded")


class Verifier:
    def __init__(self, config: AuthConfig) -> None:
        self._config = config

    def verify(self, token: str, keys: Mapping[str, jwt.PyJWK]) -> Customer:
        """The customer a token speaks for; UnknownKey if its key is not in `keys`, TokenRefused otherwise."""
        kid = signing_key_id(token)
        key = keys.get(kid)
        if key is None:
            raise UnknownKey(kid)
        try:
            claims = jwt.decode(
                token, key, algorithms=[key.algorithm_name], audience=self._config.audience,
                issuer=self._config.issuer, leeway=self._config.leeway_s,
                options={"require": ["exp", "iss", "aud"], "verify_signature": True},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"the token has no '{exc.claim}' claim") from None
        except jwt.PyJWTError as exc:
            raise TokenRefused(refusal(exc)) from None
        try:
            customer = validate_user_id(claims.get(self._config.customer_claim))
        except ValidationError:
            raise TokenRefused(f"the token's '{self._config.customer_claim}' claim names no customer") from None
        name = claims.get("preferred_username") or claims.get("name")
        return Customer(customer, name if isinstance(name, str) else None, float(claims["exp"]))


class VerifiedTokens:
    """Tokens already verified, with their customer, until they expire: a repeat costs a dict look-up, not a
    signature check. Bounded; the least recently used go first."""

    def __init__(self, leeway_s: float, capacity: int = CACHE_CAPACITY) -> None:
        self._leeway_s = leeway_s
        self._capacity = capacity
        self._entries: collections.OrderedDict[str, Customer] = collections.OrderedDict()

    def get(self, token: str, now: float) -> Customer | None:
        customer = self._entries.get(token)
        if customer is None:
            return None
        if customer.expires + self._leeway_s <= now:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return customer

    def put(self, token: str, customer: Customer) -> None:
        self._entries[token] = customer
        self._entries.move_to_end(token)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

"""What makes a bearer token acceptable to web, decided without I/O.

A token is a JWS in compact form (three base64url segments, no padding, nothing else), signed with an asymmetric
algorithm by one of the provider's keys, that algorithm being the key's own; it is an access token (its `typ`,
in the header or as a claim, marks no ID token), `iss` and `aud` are ours, `azp` one of the authorized parties
if they are named, `exp` has not passed and `nbf` has (each within the leeway), and the customer claim is a valid
user id. Everything else is refused with a reason a client may see, whatever the token's shape: no input raises
anything but TokenRefused. The JOSE work (base64url, JSON, signature) is PyJWT's; this module decides what to ask
of it. (RFC 8725 and the OWASP JWT cheat sheet: explicit algorithms, typed tokens, strict parsing.)
"""

from __future__ import annotations

import collections
import re
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from services.core.config import AuthConfig
from services.core.purchase import ValidationError, validate_user_id

from .rules import MAX_TOKEN_CHARS, Customer

# Only public-key signatures: a symmetric algorithm would let anyone who holds the public key sign (HS256
# "keyed" with it is the classic confusion attack), and "none" signs nothing.
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
CACHE_CAPACITY = 10_000
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_KID_CHARS = 256
# An access token's types: the JWT header's `typ` (RFC 9068: at+jwt; most providers: JWT), and the `typ` claim some
# providers add (Keycloak: "Bearer" for access tokens, "ID" for ID tokens, "Refresh" for refresh tokens).
ACCESS_HEADER_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
ACCESS_CLAIM_TYPES = frozenset({"bearer", "at+jwt"})


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
    if not COMPACT_JWS.fullmatch(token):
        raise TokenRefused("not a signed JWT: a JWS in compact form is three base64url parts (no padding) joined "
                           "by dots; a JWE has five")
    try:
        header = jwt.get_unverified_header(token)
    except Exception:  # PyJWT's own errors, and what its JSON decoding raises (deep nesting: RecursionError)
        raise TokenRefused("the token's header is not base64url-encoded JSON") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ASYMMETRIC:
        raise TokenRefused("the token's algorithm is not accepted; only public-key signatures are")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCESS_HEADER_TYPES):
        raise TokenRefused("the token is not an access token (its header's typ)")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
        raise TokenRefused("the token names no signing key (kid)")
    return kid


@dataclass(frozen=True)
class KeySet:
    """The usable signature keys of a JWKS document, by kid, and why each other entry was left out."""

    keys: dict[str, jwt.PyJWK]
    skipped: list[str]


def signing_keys(jwks: object) -> KeySet:
    """The usable signature keys of a JWKS document, by kid: asymmetric, for signing, with an id. A malformed
    entry is skipped (and said why), never fatal: the other keys are kept."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys, skipped = {}, []
    for index, entry in enumerate(jwks["keys"]):
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
            skipped.append(f"entry {index}: no usable kid")
            continue
        if entry.get("use", "sig") != "sig":
            continue  # an encryption key: not for us, not an error
        try:
            key = jwt.PyJWK(entry)
        except Exception as exc:  # malformed ("n": 5), or a key type or curve PyJWT cannot use
            skipped.append(f"{kid}: {type(exc).__name__}")
            continue
        if key.algorithm_name in ASYMMETRIC:
            keys[kid] = key
        else:
            skipped.append(f"{kid}: algorithm {key.algorithm_name} is not a public-key signature")
    return KeySet(keys, skipped)


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
        except Exception:  # whatever else decoding a hostile payload raises: still only a refusal
            raise TokenRefused("the token could not be decoded") from None
        typ = claims.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCESS_CLAIM_TYPES):
            raise TokenRefused("the token is not an access token (its typ claim)")
        parties = self._config.authorized_parties
        if parties and claims.get("azp") not in parties:
            raise TokenRefused("the token was issued to a client that is not an authorized party (azp)")
        try:
            customer = validate_user_id(claims.get(self._config.customer_claim))
        except ValidationError:
            raise TokenRefused(f"the token's '{self._config.customer_claim}' claim names no customer") from None
        name = next((n for n in (claims.get("name"), claims.get("preferred_username")) if isinstance(n, str)), None)
        try:
            expires = float(claims["exp"])
        except (TypeError, ValueError):
            raise TokenRefused("the token's 'exp' claim is not a number") from None
        return Customer(customer, name, expires, kid)


class VerifiedTokens:
    """Tokens already verified, with their customer: a repeat costs a dict look-up, not a signature check.

    An entry cannot outlive its key: each remembers the kid that signed it, a fresh key set that no longer lists the
    kid drops it (`key_set_fetched`), and it lives at most `max_age_s` past its last check against a fresh key set
    (its verification, or the last key set fetched since), then the token is verified again. And never past the
    token's own expiry. Bounded; the least recently used go first."""

    def __init__(self, leeway_s: float, max_age_s: float, capacity: int = CACHE_CAPACITY) -> None:
        self._leeway_s = leeway_s
        self._max_age_s = max_age_s
        self._capacity = capacity
        self._entries: collections.OrderedDict[str, tuple[Customer, float]] = collections.OrderedDict()
        self._key_set_at = float("-inf")  # when the last fresh key set confirmed every entry still held

    def get(self, token: str, now: float) -> Customer | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        customer, verified_at = entry
        if customer.expires + self._leeway_s <= now or now - max(verified_at, self._key_set_at) > self._max_age_s:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return customer

    def put(self, token: str, customer: Customer, now: float) -> None:
        self._entries[token] = (customer, now)
        self._entries.move_to_end(token)
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def key_set_fetched(self, kids: set[str], now: float) -> int:
        """A fresh key set lists `kids`: the entries of any other key go; the rest count as checked now. How many
        went."""
        gone = [token for token, (customer, _) in self._entries.items() if customer.kid not in kids]
        for token in gone:
            del self._entries[token]
        self._key_set_at = now
        return len(gone)

    def __len__(self) -> int:
        return len(self._entries)

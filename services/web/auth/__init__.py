"""Optional OpenID Connect sign-in for web (AUTH_MODE=oidc): the customer comes from a bearer token.

- tokens.py: what makes a token acceptable (PyJWT does the JOSE work; no I/O), and the cache of verified ones;
- keys.py: the provider's discovery document and signing keys (JWKS), fetched with aiohttp and refreshed at most
  once per interval when an unknown key id turns up;
- guard.py: the HTTP side: the Authorization header, 401/403 answers, the page's sign-in settings.
"""

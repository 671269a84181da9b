"""`python -m scripts.stack.token ISSUER CLIENT_ID USERNAME PASSWORD`: print an access token from an OpenID
provider's token endpoint (the password grant), for curl or `load.py --token-command` when web's sign-in is on.

    TOKEN=$(python -m scripts.stack.token http://127.0.0.1:8180/realms/shop shop-web alice alice-password)
    curl -H "Authorization: Bearer $TOKEN" http://localhost:8080/api/getAllUserBuys/<the token's sub>

The client must allow the password grant (`make dev AUTH=oidc`'s realm does: scripts/stack/keycloak.py).
"""

import sys

import requests


def access_token(issuer: str, client_id: str, username: str, password: str) -> str:
    discovery = requests.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10).json()
    answer = requests.post(discovery["token_endpoint"], timeout=10, data={
        "grant_type": "password", "client_id": client_id, "username": username, "password": password,
        "scope": "openid"})
    if answer.status_code != 200:
        raise SystemExit(f"the provider refused: {answer.status_code} {answer.text[:300]}")
    return answer.json()["access_token"]


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    print(access_token(*sys.argv[1:]))

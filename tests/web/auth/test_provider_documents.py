"""web reads the provider's documents whole however they arrive, keeps the good keys of a key set with a bad entry,
refuses a document over its cap with a clear log line, matches an issuer with a trailing slash as given, and lets the
page reach a token endpoint on another origin (against provider.py's provider, on a real web, Kafka and FerretDB)."""

from __future__ import annotations

import requests

from scripts.stack.waiting import until

from .provider import PiecewiseProvider


def buy(system, token: str) -> requests.Response:
    return requests.post(f"{system.web_url}/api/buy", json={"price": 3.0}, timeout=15,
                         headers={"Authorization": f"Bearer {token}"})


def test_documents_that_arrive_in_200_byte_pieces_50_ms_apart_are_read_whole_and_sign_in_works(system):
    malformed = [{"kty": "RSA", "kid": ["x"], "n": "AQAB", "e": "AQAB"}, {"kty": "RSA", "kid": "bad-n", "n": 5}]
    with PiecewiseProvider(extra_keys=malformed) as provider:
        assert len(str(provider.discovery())) > 5000  # some thirty pieces: as a remote provider sends it
        system.start_web(env=provider.web_settings())
        answer = buy(system, provider.token())
        assert answer.status_code == 202, answer.text
        log = system.log("web")
        assert "key set entries skipped" in log and "bad-n" in log, "the malformed entries are named in the log"
        assert "could not be fetched" not in log
        # The page may talk to the token endpoint, though it lives on another origin than the issuer.
        csp = requests.get(f"{system.web_url}/", timeout=5).headers["Content-Security-Policy"]
        connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()
        assert f"http://127.0.0.1:{provider.port}" in connect and f"http://127.0.0.1:{provider.elsewhere}" in connect


def test_a_key_set_over_the_cap_is_refused_with_a_clear_log_line_and_no_key_is_trusted(system):
    with PiecewiseProvider(jwks_padding=600 * 1024, pieces=64 * 1024, pause_s=0) as provider:
        system.start_web(env=provider.web_settings())
        answer = buy(system, provider.token())
        assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"
        line = until(lambda: next((line for line in system.log("web").splitlines()
                                        if "signing keys could not be fetched" in line), None), 10, "the log line")
        assert "more than the 524288 bytes accepted" in line, line


def test_an_issuer_with_a_trailing_slash_is_matched_as_given(system):
    with PiecewiseProvider(realm="slashed", trailing_slash=True, pieces=4096, pause_s=0) as provider:
        assert provider.issuer.endswith("/")
        system.start_web(env=provider.web_settings())
        assert buy(system, provider.token()).status_code == 202
        without = buy(system, provider.token(iss=provider.issuer.rstrip("/")))
        assert without.status_code == 401 and "issuer" in without.json()["error_description"]

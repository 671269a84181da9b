"""scripts/load.py --token-command against web with sign-in on and the real provider (Keycloak)."""

from ..web.auth.conftest import signed_in  # noqa: F401  (the fixture)
from .test_load import finish, load


def test_a_burst_with_a_token_command_buys_as_the_tokens_customer_and_verifies(signed_in):  # noqa: F811
    command = signed_in.provider.token_command(signed_in.shop, "alice", "alice-password")
    code, result = finish(load(signed_in.system, "--burst", "300", "--concurrency", "20", "--verify",
                               "--token-command", command))
    assert code == 0, result
    assert (result["sent"], result["accepted"]) == (300, 300)
    assert (result["verify"]["missing"], result["verify"]["duplicated"]) == (0, 0)
    alice = signed_in.customer_of(signed_in.token("alice"))
    assert len(signed_in.system.stored_ids_for(alice)) == 300  # a realm and system of this module's own


def test_without_a_token_every_buy_is_refused_401_and_a_failing_command_is_reported(signed_in):  # noqa: F811
    code, result = finish(load(signed_in.system, "--burst", "20", "--concurrency", "5"))
    assert result["accepted"] == 0 and result["status_counts"]["4xx"] == 20
    process = load(signed_in.system, "--burst", "5", "--token-command", "echo not-a-token")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "not a JWT" in err

"""The stack's foundation, without a server: run() (every subprocess in scripts/), until() (every wait), a Server's
context, and the names a system takes from the services' own settings."""

import signal
import sys
import time

import pytest

from scripts.stack import process
from scripts.stack.errors import StackError, TimedOut
from scripts.stack.process import Server, free_port, run
from scripts.stack.service import Names
from scripts.stack.waiting import until

pytestmark = pytest.mark.unit  # make check: no server, no build


def test_run_returns_the_output_and_a_failure_names_the_command_with_its_last_lines():
    assert run([sys.executable, "-c", "print('hello')"]).stdout == "hello\n"
    assert run([sys.executable, "-c", "raise SystemExit(3)"], check=False).returncode == 3
    with pytest.raises(StackError, match=r"the step failed \(exit 4\):\nline 1\nline 2$"):
        run([sys.executable, "-c", "print('line 1'); print('line 2'); raise SystemExit(4)"], "the step")
    assert run([sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"], input="in").stdout == "IN\n"


def test_run_kills_a_command_that_outlives_its_timeout_and_says_so():
    started = time.monotonic()
    with pytest.raises(StackError, match="did not finish in 1s"):
        run([sys.executable, "-c", "import time; time.sleep(30)"], "sleeper", timeout=1)
    assert time.monotonic() - started < 10


def test_until_returns_the_first_true_value_and_times_out_naming_what_it_waited_for():
    calls = iter([0, [], "ready"])
    assert until(lambda: next(calls), 5, "a value", interval=0.01) == "ready"
    seen = []
    with pytest.raises(TimedOut, match=r"waiting for the thing \(last: \[1, 1"):
        until(lambda: seen.append(1), 0.2, lambda: f"the thing (last: {seen})", interval=0.05)


class Sleeper(Server):
    name = "sleeper"

    def __init__(self, folder, seconds: float) -> None:
        super().__init__(folder, free_port())
        self.seconds = seconds

    def command(self) -> list[str]:
        return [sys.executable, "-c", f"import time; time.sleep({self.seconds})"]


def test_until_fails_at_once_when_the_process_it_watches_exits(tmp_path):
    sleeper = Sleeper(tmp_path, 0)
    sleeper.spawn()
    started = time.monotonic()
    with pytest.raises(StackError, match=r"sleeper exited with 0 while waiting for never; see .*sleeper.log"):
        until(lambda: False, 30, "never", sleeper)
    assert time.monotonic() - started < 10


def test_a_server_that_never_listens_is_killed_when_its_start_times_out_and_a_with_block_stops_it(tmp_path):
    with pytest.raises(TimedOut, match="sleeper to listen"):
        Sleeper(tmp_path, 60).start(timeout=0.5)
    sleeper = Sleeper(tmp_path, 60)
    sleeper.listening = lambda: True  # as if it listened at once
    with sleeper:
        assert sleeper.exit_code() is None
    assert sleeper.exit_code() is not None


def test_names_come_from_the_services_own_settings_and_their_defaults():
    assert Names.from_env({}) == Names()
    assert Names().dead_letter_topic == "purchases.dlq"
    names = Names.from_env({"KAFKA_TOPIC": "t", "KAFKA_CONSUMER_GROUP": "g", "MONGODB_DATABASE": "d"})
    assert (names.topic, names.dead_letter_topic, names.group, names.database) == ("t", "t.dlq", "g", "d")


def test_a_tests_names_in_the_stack_stay_short_and_two_long_parametrized_cases_never_share_them():
    from tests.support import sanitize

    long = "test_kafka_sigkilled_under_traffic_web_accepts_again_within_10s_and_every_request_is_stored_once"
    one, two = sanitize(f"{long}[1]"), sanitize(f"{long}[2]")
    assert one != two and len(one) == len(two) == 60
    assert sanitize("test_short[a-b]") == "test-short-a-b"


def test_a_ctrl_c_that_arrives_while_spawn_forks_is_raised_and_the_child_it_made_is_not_left_running(monkeypatch):
    """The signal lands inside Popen (held off there, raised once it returns): the caller never gets the handle, so
    spawn() itself must stop the child (`make dev` stopped as it started api once left that api running)."""
    children = []
    real_popen = process.subprocess.Popen

    def popen_then_ctrl_c(*args, **kwargs):
        children.append(real_popen(*args, **kwargs))
        signal.raise_signal(signal.SIGINT)  # held by spawn(), delivered as it leaves
        return children[-1]

    monkeypatch.setattr(process.subprocess, "Popen", popen_then_ctrl_c)
    # Ctrl-C as a terminal delivers it, whatever this run inherited: a shell's background job starts with SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            process.spawn([sys.executable, "-c", "import time; time.sleep(60)"], None)
    finally:
        signal.signal(signal.SIGINT, previous)
    [child] = children
    assert child.poll() is not None, "the child spawn() made is still running"

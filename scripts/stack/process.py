"""Processes, started and stopped by their process id: `run()` for a command run to its end (every subprocess in
scripts/ goes through it, or through `spawn()` for one that keeps running), and `Server`, a child that listens,
waited for on its port and stopped by a signal, then SIGKILL.

Every server module of the stack (kafka.py, postgres.py, ferretdb.py, service.py) builds on this one; so do the
control plane (scripts/controlplane) and the tools (scripts/tools.py, scripts/images.py). Paths and the tools'
whereabouts are in paths.py, errors in errors.py, waiting in waiting.py, network namespaces in netns.py.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .errors import StackError, TimedOut, say
from .netns import connect_probe, in_namespace
from .paths import ROOT
from .waiting import until

Finished = subprocess.CompletedProcess  # a command run() ran
Running = subprocess.Popen  # a command spawn() started
TAIL_LINES = 25  # of a failed command's output, in its error


def run(command: Sequence[str] | str, what: str | None = None, *, check: bool = True, timeout: float | None = None,
        input: str | None = None, error: type[StackError] = StackError, **options) -> Finished:
    """Run `command` to its end, its output captured as text, and return it (returncode, stdout, stderr).

    `what` names it in errors (else its program and first words). With `check`, a non-zero exit is an `error`
    (a StackError) with the output's last lines; a `timeout` passed kills it and is an `error` either way. A
    string command runs in a shell (`shell=True` in `options`).

    Not subprocess.run(): a Ctrl-C inside its Popen() (after the fork) left the child running, with no handle to
    stop it (seen: `make dev` stopped while formatting Kafka's storage left the format tool behind). A Ctrl-C held
    off during Popen() is raised as the `with` ends: inside the try, so the child is stopped."""
    name = what or _name(command)
    process = None
    try:
        with signals_deferred():
            process = subprocess.Popen(command, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise error(f"{name} did not finish in {timeout:.0f}s") from None
    except BaseException:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        raise
    if check and process.returncode != 0:
        tail = "\n".join((stdout + stderr).strip().splitlines()[-TAIL_LINES:])
        raise error(f"{name} failed (exit {process.returncode}):\n{tail}")
    return Finished(command, process.returncode, stdout, stderr)


def step(command: Sequence[str], what: str, **options) -> Finished:
    """run() a long step of a build or a start, saying so before and after."""
    say(f"{what}: {' '.join(command[:4])} ...")
    started = time.monotonic()
    finished = run(command, what, **options)
    say(f"{what}: done in {time.monotonic() - started:.0f}s")
    return finished


def _name(command: Sequence[str] | str) -> str:
    """A command's name for messages: the program and its first words that are neither options nor paths."""
    if isinstance(command, str):
        return command[:60]
    words = [word for word in command[1:] if not word.startswith("-") and "/" not in word]
    return " ".join([Path(command[0]).name, *words[:2]])


def succeeds(command: Sequence[str], **options) -> bool:
    """Does `command` exit 0 (its output discarded)."""
    try:
        return run(command, check=False, **options).returncode == 0
    except (StackError, OSError):
        return False


def version_of(command: Sequence[str], word: int = 2) -> str:
    """The `word`-th word of what `command` (a --version) prints, or that the tool is not installed."""
    try:
        return run(command, check=False).stdout.split()[word]
    except (StackError, OSError, IndexError):
        return "(not installed)"


def spawn(command: Sequence[str], output: IO | None, *, errors_too: bool = True, **options) -> Running:
    """Start `command` and leave it running: stdin closed, stdout into `output` (None: discarded), stderr there too
    (or discarded). A Ctrl-C during the fork is held off, as in run(), and raised once the child exists: the child
    is killed then, since the caller never gets its handle (seen: `make dev` stopped as it started api left that api
    running, and the next `make dev` found its metrics port taken)."""
    process = None
    try:
        with signals_deferred():
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                       stdout=output if output is not None else subprocess.DEVNULL,
                                       stderr=subprocess.STDOUT if errors_too and output is not None
                                       else subprocess.DEVNULL,
                                       **options)
    except BaseException:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        raise
    return process


_handed_out: set[int] = set()


@contextlib.contextmanager
def signals_deferred(signums: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)):
    """Hold SIGINT/SIGTERM until the block ends, then deliver them to the handlers in place before.

    Around Popen(): a Ctrl-C raised inside it would leave a child running that we hold no handle to, so
    nobody could stop it. (Masking the signals instead would be inherited by the child.) Only the main thread
    can set handlers; elsewhere the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: held.append(signum)) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in held:
            signal.raise_signal(signum)


def free_port() -> int:
    """A port free now, and never one this process handed out before (the OS may offer the same one twice)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class Server:
    """A child process we started, with its output in a log file; stopped by its pid with `stop_signal`, then
    SIGKILL if it has not exited in time. `with server:` starts it and stops it."""

    name = "server"
    env: dict[str, str] | None = None  # the child's environment; None inherits ours
    stop_signal: signal.Signals = signal.SIGTERM
    netns: str | None = None  # a network namespace (`ip netns`) to run in, for tests of network faults

    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.host = host
        self.process: Running | None = None
        self.log_path = self.data_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Anything to do once before the first start."""

    def popen_options(self) -> dict:
        """Extra arguments for Popen (another user, another working folder)."""
        return {}

    def start(self, timeout: float = 60.0) -> None:
        self.spawn()
        self.wait_open(timeout)

    def spawn(self) -> None:
        """Start the process; do not wait for it (see wait_open)."""
        if port_open(self.port, self.host):
            raise StackError(f"{self.host}:{self.port} is already in use; is another {self.name} running?")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        command, options = self.command(), {"env": self.env, "cwd": ROOT, **self.popen_options()}
        if self.netns is not None:
            command, options = in_namespace(self.netns, command, options)
        # A session of its own: Ctrl-C in a terminal reaches only our supervisor, which stops us in order.
        with open(self.log_path, "ab") as log:
            self.process = spawn(command, log, start_new_session=True, **options)

    @property
    def address(self) -> str:
        """Where a client reaches it: host:port here; a URL or URI where the server's clients take one."""
        return f"{self.host}:{self.port}"

    def exit_code(self) -> int | None:
        """None while it runs (or before it started)."""
        return None if self.process is None else self.process.poll()

    def where_to_look(self) -> str:
        return f"; see {self.log_path}"

    def listening(self) -> bool:
        """Does it take connections yet: its port is open (a server on a unix socket says otherwise)."""
        if self.netns is not None:  # asked from inside: its loopback is not ours
            return succeeds(connect_probe(self.netns, self.host, self.port))
        return port_open(self.port, self.host)

    def wait_open(self, timeout: float) -> None:
        """Until the process listens; StackError (and the process killed) if it exits or times out."""
        try:
            until(self.listening, timeout, f"{self.name} to listen on {self.host}:{self.port}", self)
        except TimedOut:
            self.kill()
            raise

    def stop(self, timeout: float = 20.0) -> None:
        """`stop_signal`, then SIGKILL if it has not exited in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

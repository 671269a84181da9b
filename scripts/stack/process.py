"""The foundation of the local stack: paths, errors, messages, and child processes started and stopped by
their process id (a server waited for on its port or its HTTP readiness, a one-off tool run to completion).

Every server module of the stack (kafka.py, postgres.py, ferretdb.py, service.py) builds on this one; so do the
control plane (scripts/controlplane) and the tools (scripts/tools.py, scripts/images.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PURCHASE_CACHE") or Path.home() / ".cache" / "purchase-system")

INSTALL_HINTS = {
    "java": "a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)",
    "mvn": "Apache Maven (Debian: apt-get install maven)",
    "go": "Go 1.22 or newer (https://go.dev/doc/install, or Debian: apt-get install golang)",
    "git": "git (Debian: apt-get install git)",
}


class StackError(RuntimeError):
    pass


def say(message: str) -> None:
    try:
        print(f"[stack] {message}", file=sys.stderr, flush=True)
    except OSError:  # the terminal or pipe is gone: stopping what we started matters more than saying so
        pass


def require(tool: str, hint: str | None = None) -> str:
    """The tool's path, on PATH or in /usr/sbin and /sbin (where Debian puts runc); StackError with `hint` (or
    INSTALL_HINTS') when it is not installed."""
    path = shutil.which(tool) or next((str(p) for p in (Path("/usr/sbin") / tool, Path("/sbin") / tool)
                                       if p.exists()), None)
    if path is None:
        raise StackError(f"'{tool}' is not installed: install {hint or INSTALL_HINTS[tool]}")
    return path


def run(cmd: list[str], what: str, **kwargs) -> None:
    say(f"{what}: {' '.join(cmd[:4])} ...")
    started = time.monotonic()
    # Not subprocess.run(): a Ctrl-C inside its Popen() (after the fork) left the child running, with no handle
    # to stop it (seen: `make dev` stopped while formatting Kafka's storage left the format tool behind).
    # A Ctrl-C held off during Popen() is raised as the `with` ends: inside the try, so the child is stopped.
    process = None
    try:
        with signals_deferred():
            process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        stdout, stderr = process.communicate()
    except BaseException:
        if process is not None:
            process.kill()
            process.wait()
        raise
    if process.returncode != 0:
        tail = "\n".join((stdout + stderr).strip().splitlines()[-25:])
        raise StackError(f"{what} failed (exit {process.returncode}):\n{tail}")
    say(f"{what}: done in {time.monotonic() - started:.0f}s")


def writable_copy(module_dir: Path, dest: Path) -> None:
    """A copy of a Go module's source that we may change and delete: the module cache's files and folders are
    read-only (the top folder too; as a normal user that made deleting the copy fail), and so are their copies."""
    remove_tree(dest)
    shutil.copytree(module_dir, dest)
    for path in (dest, *dest.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)


def remove_tree(tree: Path) -> None:
    """Delete a tree, also one left read-only by a copy that was interrupted before it was made writable."""
    if not tree.exists():
        return
    for path in (tree, *tree.rglob("*")):
        if path.is_dir():
            path.chmod(path.stat().st_mode | 0o700)
    shutil.rmtree(tree)


# --- running servers -------------------------------------------------------------------------------

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
    SIGKILL if it has not exited in time."""

    name = "server"
    env: dict[str, str] | None = None  # the child's environment; None inherits ours
    stop_signal: signal.Signals = signal.SIGTERM
    netns: str | None = None  # a network namespace (`ip netns`) to run in, for tests of network faults

    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.host = host
        self.process: subprocess.Popen | None = None
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
        log = open(self.log_path, "ab")
        # A session of its own: Ctrl-C in a terminal reaches only our supervisor, which stops us in order.
        with signals_deferred():
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, **options)
        log.close()

    @property
    def endpoint(self) -> str:
        """Where it listens, for messages."""
        return f"{self.host}:{self.port}"

    def listening(self) -> bool:
        """Does it take connections yet: its port is open (a server on a unix socket says otherwise)."""
        if self.netns is not None:  # asked from inside: its loopback is not ours
            probe = ["ip", "netns", "exec", self.netns, sys.executable, "-c",
                     "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)",
                     self.host, str(self.port)]
            return subprocess.run(probe, capture_output=True).returncode == 0
        return port_open(self.port, self.host)

    def wait_open(self, timeout: float) -> None:
        """Until the process listens; StackError (and the process killed) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not self.listening():
            if self.process.poll() is not None:
                raise StackError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise StackError(f"{self.name} did not open {self.endpoint} in {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.1)

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


def in_namespace(netns: str, command: list[str], options: dict) -> tuple[list[str], dict]:
    """`command` run inside a network namespace: `ip netns exec` (root) enters it, then, if the options asked for
    another user, setpriv becomes that user; each execs the next, so the process id is the server's own."""
    options = dict(options)
    uid, gid = options.pop("user", None), options.pop("group", None)
    options.pop("extra_groups", None)
    become = [] if uid is None else [require("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    return [require("ip"), "netns", "exec", netns, *become, *command], options


def fetch_command(argv: list[str], usage: str, steps: list[tuple[str, Callable[[], object]]]) -> int:
    """`python -m scripts.<module> fetch`: run each step once, saying what it made; 1 with the reason if one fails."""
    if argv[1:] != ["fetch"]:
        print(usage, file=sys.stderr)
        return 2
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        for name, step in steps:
            say(f"{name}: {step()}")
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    return 0


def http_ready(url: str, timeout: float = 1.0) -> bool:
    """Does `url` answer 200 now."""
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def wait_http(url: str, timeout: float = 30.0, server: Server | None = None) -> None:
    """Until `url` answers 200; StackError if it does not in time, or if `server` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not http_ready(url):
        if server is not None and server.process is not None and server.process.poll() is not None:
            raise StackError(f"{server.name} exited with {server.process.returncode}; see {server.log_path}")
        if time.monotonic() > deadline:
            where = f"; see {server.log_path}" if server is not None else ""
            raise StackError(f"{url} did not answer 200 in {timeout:.0f}s{where}")
        time.sleep(0.2)

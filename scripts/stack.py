"""The local stack without Docker: a one-node Apache Kafka (KRaft) and FerretDB (MongoDB wire) on a throwaway
PostgreSQL cluster of its own (scripts/postgres.py).

    python -m scripts.stack fetch     # resolve Kafka's jars with mvn, build FerretDB with go (once, cached)

Kafka's jars come from Maven Central (scripts/kafka/pom.xml); FerretDB's source comes from the Go module
proxy. Both land in $PURCHASE_CACHE (default ~/.cache/purchase-system) and are reused afterwards.
`scripts/dev.py` and the test suite start and stop the servers through the classes below.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PURCHASE_CACHE") or Path.home() / ".cache" / "purchase-system")
KAFKA_POM = ROOT / "scripts" / "kafka" / "pom.xml"
KAFKA_LOG4J = ROOT / "scripts" / "kafka" / "log4j2.xml"
KAFKA_VERSION = "4.1.1"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
# Our change to FerretDB, applied to its source before building: sort and limit pushdown (see the file's header).
FERRETDB_PATCH = ROOT / "scripts" / "ferretdb" / "sort-limit-pushdown.patch"
# FerretDB 1.24 declares toolchain go1.24.x; if the machine's Go cannot build it, fetch that one.
FERRETDB_FALLBACK_TOOLCHAIN = "go1.24.3"
TOPIC_PARTITIONS = 8
# Kafka's internal topics, as named in its `<name>.replication.factor` and `<name>.min.isr` settings.
INTERNAL_TOPICS = ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic")

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


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"'{tool}' is not installed: install {INSTALL_HINTS[tool]}")
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


# --- fetching and building (once) ------------------------------------------------------------------

def kafka_libs() -> Path:
    """The folder of jars a Kafka broker runs from; resolved with Maven on first use."""
    libs = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / ".complete").exists():
        return libs
    require("java")
    mvn = require("mvn")
    if libs.exists():
        shutil.rmtree(libs)
    run([mvn, "-B", "-q", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
        f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central")
    (libs / ".complete").touch()
    return libs


def ferretdb_binary() -> Path:
    """The FerretDB executable, with FERRETDB_PATCH; built from its module source with `go build` on first use."""
    patch_id = hashlib.sha256(FERRETDB_PATCH.read_bytes()).hexdigest()[:12]
    binary = CACHE / f"ferretdb-{FERRETDB_VERSION}" / f"ferretdb-{patch_id}"
    if binary.exists():
        return binary
    go = require("go")
    say(f"downloading FerretDB {FERRETDB_VERSION} source from the Go module proxy")
    listing = subprocess.run([go, "mod", "download", "-json", f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"],
                             capture_output=True, text=True, cwd=CACHE)
    if listing.returncode != 0:
        raise StackError(f"go mod download of FerretDB failed:\n{listing.stdout}{listing.stderr}")
    module_dir = Path(json.loads(listing.stdout)["Dir"])
    source = CACHE / f"ferretdb-{FERRETDB_VERSION}" / "src"
    writable_copy(module_dir, source)
    # git apply as a plain patch tool: the ceiling keeps it from taking an enclosing repository as its own.
    run([require("git"), "apply", str(FERRETDB_PATCH)], f"applying {FERRETDB_PATCH.name}", cwd=source,
        env={**os.environ, "GIT_CEILING_DIRECTORIES": str(source.parent)})
    # A build outside FerretDB's own tooling must say which version it is, or the binary refuses to start.
    (source / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
    build = [go, "build", "-trimpath", "-o", str(binary), "./cmd/ferretdb"]
    try:
        run(build, "building FerretDB (a minute or two the first time)", cwd=source)
    except StackError:
        say(f"retrying with GOTOOLCHAIN={FERRETDB_FALLBACK_TOOLCHAIN}")
        run(build, "building FerretDB", cwd=source, env={**os.environ, "GOTOOLCHAIN": FERRETDB_FALLBACK_TOOLCHAIN})
    remove_tree(source)
    return binary


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


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what `random-uuid` prints)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


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
    """A child process we started, with its output in a log file; stopped by its pid."""

    name = "server"
    env: dict[str, str] | None = None  # the child's environment; None inherits ours

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
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
        if port_open(self.port):
            raise StackError(f"port {self.port} is already in use; is another {self.name} running?")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        log = open(self.log_path, "ab")
        # A session of its own: Ctrl-C in a terminal reaches only our supervisor, which stops us in order.
        with signals_deferred():
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            **{"env": self.env, "cwd": ROOT, **self.popen_options()})
        log.close()

    def wait_open(self, timeout: float) -> None:
        """Until the process listens on its port; StackError (and the process killed) if it exits or times out."""
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                raise StackError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise StackError(f"{self.name} did not open port {self.port} in {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class KafkaServer(Server):
    name = "kafka"

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int | None = None,
                 heap: str = "512m", cluster_id: str | None = None, node_id: int = 1,
                 voters: str | None = None) -> None:
        """One node, its own controller quorum; or, with `voters` ("1@host:port,2@..."), one node of a
        cluster with that static quorum (scripts/kafka_cluster.py), whose internal topics have 3 replicas."""
        super().__init__(data_dir, port)
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.cluster_id = cluster_id or new_cluster_id()
        self.node_id = node_id
        self.voters = voters
        self.libs = kafka_libs()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> Path:
        path = self.data_dir / "server.properties"
        logs = self.data_dir / "logs"
        path.write_text("\n".join([
            "process.roles=broker,controller",
            f"node.id={self.node_id}",
            *self._quorum(),
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={logs}",
            "offsets.topic.num.partitions=8",
            # Topics are created by us, with their partitions; never by a client's typo.
            "auto.create.topics.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]))
        return path

    def _quorum(self) -> list[str]:
        if self.voters is None:
            # One node: internal topics cannot have more than one replica.
            return [f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    *(f"{name}.replication.factor=1" for name in INTERNAL_TOPICS),
                    *(f"{name}.min.isr=1" for name in INTERNAL_TOPICS if name != "offsets.topic")]
        # The production shape: 3 replicas, acks=all needs 2 in sync, so one broker may fail.
        # A dead broker is fenced after 3 s without heartbeats (Kafka's default: 9 s), so its partitions' leaders
        # move sooner; until then writes to them wait (and web answers 503).
        return [f"controller.quorum.voters={self.voters}", "default.replication.factor=3", "min.insync.replicas=2",
                "broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500",
                *(f"{name}.replication.factor=3" for name in INTERNAL_TOPICS),
                *(f"{name}.min.isr=2" for name in INTERNAL_TOPICS if name != "offsets.topic")]

    def _java(self, main: str, *args: str) -> list[str]:
        # TieredStopAtLevel=1: compile with C1 only. A broker that lives for a test session or a bench run spends
        # its first minutes compiling with C2 on the cores the services need: measured at 500 produce requests/s,
        # 44 % of a core for the broker over 30 s (21 % of it the C2 compiler) against 28 % with C1 alone, and
        # at ~2,000/s 73 % against 46 %. A long-lived production broker keeps the JVM's default.
        return [require("java"), "-XX:TieredStopAtLevel=1", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
                "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", f"{self.libs}/*", main, *args]

    def prepare(self) -> None:
        properties = self._properties()
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        # `--cluster-id=ID`, one argument: one id in 64 starts with '-', which as a separate argument the
        # storage tool's parser takes for an option ("expected one argument").
        standalone = ["--standalone"] if self.voters is None else []
        run(self._java("kafka.tools.StorageTool", "format", *standalone, f"--cluster-id={self.cluster_id}",
                       "-c", str(properties)), f"formatting Kafka storage (node {self.node_id})")

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.data_dir / "server.properties"))

    def start(self, timeout: float = 90.0, wait_ready: bool = True) -> None:
        """`wait_ready`: until it answers requests (a cluster's node cannot before a quorum is up)."""
        super().start(timeout)
        if wait_ready:
            wait_for_kafka(self.bootstrap, timeout)


class FerretDB(Server):
    """FerretDB on its own PostgreSQL cluster (started first, in data_dir/postgres, stopped last).

    `process` is FerretDB's: a fault test that kills it leaves PostgreSQL running, as a crashed FerretDB would.
    """

    name = "ferretdb"

    def __init__(self, data_dir: Path, port: int = 27017, postgres_port: int | None = None) -> None:
        from scripts.postgres import PostgreSQL

        super().__init__(data_dir, port)
        self.binary = ferretdb_binary()
        self.postgres = PostgreSQL(self.data_dir / "postgres", postgres_port or free_port())

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        # plan_cache_mode: see scripts/postgres.py (the history index and FerretDB's prepared statements).
        return [str(self.binary), "--handler=postgresql",
                f"--postgresql-url={self.postgres.url}?plan_cache_mode=force_custom_plan",
                "--test-enable-sort-limit-pushdown",  # FERRETDB_PATCH's
                f"--listen-addr=127.0.0.1:{self.port}", "--state-dir=-", "--debug-addr=-",
                "--telemetry=disable", "--log-level=warn"]

    def spawn(self) -> None:
        if self.postgres.process is None or self.postgres.process.poll() is not None:
            self.postgres.start()
        super().spawn()

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
        self.postgres.stop(timeout)


class PythonService(Server):
    """One of our services, `python -m services.<name>`, with its configuration in the environment."""

    def __init__(self, name: str, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.name = name
        super().__init__(data_dir, port)
        # As the Dockerfiles do: glibc's allocator, so memory freed after a burst can be handed back.
        self.env = {"PYTHONMALLOC": "malloc", **os.environ, **env, "PORT": str(port)}

    def command(self) -> list[str]:
        return [sys.executable, "-m", f"services.{self.name}"]


# --- Kafka administration --------------------------------------------------------------------------

def wait_for_kafka(bootstrap: str, timeout: float = 60.0) -> None:
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
            admin.list_topics()
            admin.close()
            return
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise StackError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {exc!r}") from exc
            time.sleep(0.5)


def create_topics(bootstrap: str, topic: str, dead_letter_topic: str | None = None,
                  partitions: int = TOPIC_PARTITIONS, replication_factor: int = 1) -> None:
    """The purchases topic with its partitions, and its dead-letter topic (the services' own code does it)."""
    from services.api.topics import ensure_topics
    from services.core.config import KafkaConfig

    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC": topic, "KAFKA_DLQ_TOPIC": dead_letter_topic or ""}
    ensure_topics(KafkaConfig.from_env(env), partitions, replication_factor)


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


def main(argv: list[str]) -> int:
    return fetch_command(argv, __doc__, [("Kafka jars", kafka_libs), ("FerretDB", ferretdb_binary)])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Session fixtures: a real Apache Kafka (KRaft) and a real FerretDB, started here and stopped at the end.

They listen on free loopback ports, in a temporary folder, so `make dev` can run beside the tests.
Every test that uses `system` gets its own topic, consumer group and database.
"""

from __future__ import annotations

import pytest

from scripts.controlplane import build as controlplane
from scripts.stack import FERRETDB_VERSION, KAFKA_VERSION, FerretDB, KafkaServer, free_port

from .support import System, sanitize


# What the real-server and real-tool tests ran against, for the summary at the end of the session.
REAL = {
    "kafka": f"Apache Kafka {KAFKA_VERSION} (KRaft)",
    "ferretdb": f"FerretDB {FERRETDB_VERSION} on PostgreSQL",
    "chart": "the real helm binary",
    "manifests": "the real tilt binary",
    "kube_cluster": f"Kubernetes {controlplane.KUBERNETES_VERSION} control plane (etcd {controlplane.ETCD_VERSION}, "
                    f"kwok {controlplane.KWOK_VERSION}) with KEDA {controlplane.KEDA_VERSION}",
}
_started: dict[str, str] = {}
_fixtures_of: dict[str, tuple[str, ...]] = {}


def _running(server, name: str, detail: str = ""):
    server.start()
    _started[name] = f"{REAL[name]}{detail} at 127.0.0.1:{server.port}"
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    yield from _running(KafkaServer(tmp_path_factory.mktemp("kafka"), port=free_port()), "kafka")


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory):
    server = FerretDB(tmp_path_factory.mktemp("ferretdb"), port=free_port())
    yield from _running(server, "ferretdb", f" {server.postgres.version}")


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory, kafka, ferretdb):
    """The control plane with KEDA and the pod runner (scripts/controlplane), on the session's Kafka and FerretDB.
    Crashed containers restart after 1-2 s instead of the kubelet's 10-300 s, so a failing Job fails quickly."""
    from scripts.controlplane.local import LocalCluster

    _restart_stopped(kafka, ferretdb)
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), kafka=kafka, ferretdb=ferretdb, restart_backoff_s=(1, 2))
    with local:
        _started["kube_cluster"] = f"{REAL['kube_cluster']} at {local.control_plane.kube.server}"
        yield local


def _restart_stopped(*servers) -> None:
    # A fault test stops servers on purpose; the next test needs them running.
    for server in servers:
        if server.process is None or server.process.poll() is not None:
            server.start()


@pytest.fixture
def system(request, kafka, ferretdb, tmp_path):
    """A private topic/group/database; call start_api()/start_web() for the services the test needs."""
    _restart_stopped(kafka, ferretdb)
    marker = request.node.get_closest_marker("service_env")
    made = System(sanitize(request.node.name), kafka, ferretdb, tmp_path, dict(marker.kwargs) if marker else {})
    yield made
    made.stop()


@pytest.fixture(scope="module")
def running_system(request, kafka, ferretdb, tmp_path_factory):
    """Web and api running, shared by a module's tests that neither stop servers nor need a clean slate."""
    _restart_stopped(kafka, ferretdb)
    made = System(sanitize(request.module.__name__), kafka, ferretdb, tmp_path_factory.mktemp("services"))
    made.start_api()
    made.start_web()
    yield made
    made.stop()


def pytest_terminal_summary(terminalreporter):
    """Which tests ran against real servers and tools, and how they ended (CI shows that none were skipped)."""
    outcomes: dict[str, dict[str, int]] = {name: {} for name in REAL}
    for status in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(status, []):
            if report.when == "call" or report.outcome != "passed":
                for name in REAL:
                    if name in _fixtures_of.get(report.nodeid, ()):
                        outcomes[name][status] = outcomes[name].get(status, 0) + 1
    terminalreporter.section("real servers and tools")
    for name, what in REAL.items():
        counts = ", ".join(f"{n} {status}" for status, n in outcomes[name].items()) or "not run"
        terminalreporter.write_line(f"{_started.get(name, what)}: {counts}")


def pytest_collection_modifyitems(items):
    _fixtures_of.update((item.nodeid, tuple(item.fixturenames)) for item in items)

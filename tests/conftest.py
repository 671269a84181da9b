"""Session fixtures: a real Apache Kafka (KRaft) and a real FerretDB, started here and stopped at the end.

They listen on free loopback ports, in a temporary folder, so `make dev` can run beside the tests.
Every test that uses `system` gets its own topic, consumer group and database.
"""

from __future__ import annotations

import pytest

from scripts.controlplane import build as controlplane
from scripts.controlplane.node import runtime_versions
from scripts.stack.ferretdb import FERRETDB_VERSION, FerretDB
from scripts.stack.kafka import KAFKA_VERSION, KafkaServer
from scripts.stack.keycloak import KEYCLOAK_VERSION, Keycloak
from scripts.stack.process import free_port
from scripts.tools import TILT_VERSION

from .support import System, sanitize

# What the real-server and real-tool tests ran against, for the summary at the end of the session.
REAL = {
    "kafka": f"Apache Kafka {KAFKA_VERSION} (KRaft)",
    "ferretdb": f"FerretDB {FERRETDB_VERSION} on PostgreSQL",
    "keycloak": f"Keycloak {KEYCLOAK_VERSION} (the OpenID provider, its server distribution from Maven Central)",
    "lab": f"network namespaces on one bridge (tests/netfaults/): web, api, three Apache Kafka {KAFKA_VERSION} "
           f"brokers and FerretDB {FERRETDB_VERSION}, each a host of its own",
    "chart": "the real helm binary",
    "manifests": "the real tilt binary",
    "images": "web and api images built with podman",
    "tilt": f"tilt {TILT_VERSION} (tilt ci, tilt up, through podman's Docker API) on the real node",
    "kube_cluster": f"Kubernetes {controlplane.KUBERNETES_VERSION} control plane (etcd {controlplane.ETCD_VERSION}) "
                    f"with KEDA {controlplane.KEDA_VERSION}, and a real node: the kubelet and kube-proxy "
                    f"{controlplane.KUBERNETES_VERSION}, {runtime_versions()}, CoreDNS {controlplane.COREDNS_VERSION}, "
                    "images from Debian's docker-registry",
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
def keycloak(tmp_path_factory):
    """The OpenID provider for the sign-in tests; each module makes a realm of its own in it."""
    yield from _running(Keycloak(tmp_path_factory.mktemp("keycloak"), port=free_port()), "keycloak")


@pytest.fixture(scope="module")
def kube_cluster(tmp_path_factory):
    """The control plane with KEDA, the real node, and Kafka and FerretDB on the node's bridge
    (scripts/controlplane/local.py), for one module: the node's network and kube-proxy's rules are the
    host's, so only one cluster runs at a time (test_make_cluster.py starts its own)."""
    from scripts.controlplane.local import LocalCluster

    with LocalCluster(tmp_path_factory.mktemp("cluster")) as local:
        _started["kube_cluster"] = f"{REAL['kube_cluster']} at {local.control_plane.kube.server}"
        yield local


@pytest.fixture(scope="session")
def images():
    """web's and api's images, built from their Dockerfiles (scripts/images.py): {"web": name, "api": name}."""
    from scripts import images as build_images

    base = build_images.base_image()
    built = {service: build_images.build_service(service, base) for service in build_images.SERVICES}
    sizes = ", ".join(f"{name} {build_images.size_mib(name):.0f} MiB" for name in built.values())
    _started["images"] = f"{REAL['images']} ({sizes}) on {base.describe()}"
    return built


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

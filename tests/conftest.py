"""Session fixtures: a real Apache Kafka (KRaft) and a real FerretDB, started here and stopped at the end.

They listen on free loopback ports, in a temporary folder, so `make dev` can run beside the tests.
Every test that uses `system` gets its own topic, consumer group and database.

The cluster's tests (tests/controlplane/) run last. When the control plane's and the node's Go programs are not built
yet (a cold run), the session builds them in the background, niced, while the other tests run, and the cluster's
tests wait for that build (`controlplane_binaries`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from scripts.controlplane import build as controlplane
from scripts.controlplane import observability
from scripts.controlplane.netpol import NetworkPolicyController
from scripts.controlplane.node import runtime_versions
from scripts.fetch import controlplane_steps, in_background, run_steps
from scripts.stack import builds
from scripts.stack.ferretdb import FERRETDB_VERSION, FerretDB
from scripts.stack.kafka import KAFKA_VERSION, KafkaServer
from scripts.stack.kafka_security import KafkaSecurity
from scripts.stack.keycloak import KEYCLOAK_VERSION, Keycloak
from scripts.stack.paths import CACHE
from scripts.stack.process import free_port
from scripts.stack.waiting import until
from scripts.tools import TILT_VERSION

from .support import System, sanitize

# What the real-server and real-tool tests ran against, for the summary at the end of the session.
REAL = {
    "kafka": f"Apache Kafka {KAFKA_VERSION} (KRaft)",
    "secure_kafka": f"Apache Kafka {KAFKA_VERSION} with SASL/SCRAM-SHA-512 and ACLs (StandardAuthorizer), a principal "
                    "for each of web, api, the topics Job and KEDA",
    "ferretdb": f"FerretDB {FERRETDB_VERSION} on PostgreSQL",
    "keycloak": f"Keycloak {KEYCLOAK_VERSION} (the OpenID provider, its server distribution from Maven Central)",
    "lab": f"network namespaces on one bridge (tests/netfaults/): web, api, three Apache Kafka {KAFKA_VERSION} "
           f"brokers and FerretDB {FERRETDB_VERSION}, each a host of its own",
    "chart": "the real helm binary",
    "promtool": "Prometheus' promtool (Debian's prometheus package)",
    "manifests": "the real tilt binary",
    "images": "web and api images built with podman",
    "tilt": f"tilt {TILT_VERSION} (tilt ci, tilt up, through podman's Docker API) on the real node",
    "kube_cluster": f"Kubernetes {controlplane.KUBERNETES_VERSION} control plane (etcd {controlplane.ETCD_VERSION}) "
                    f"with KEDA {controlplane.KEDA_VERSION}, and a real node: the kubelet and kube-proxy "
                    f"{controlplane.KUBERNETES_VERSION}, {runtime_versions()}, CoreDNS {controlplane.COREDNS_VERSION}, "
                    f"{NetworkPolicyController.version()} enforcing NetworkPolicies (patched: patches/), "
                    "images from Debian's docker-registry",
    "monitored": f"on the real node: {observability.describe()}, scraping the chart's pods and KEDA's operator",
}
_started: dict[str, str] = {}
_session_began = time.time()
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
def secure_kafka(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secure-kafka")
    yield from _running(KafkaServer(folder, port=free_port(), security=KafkaSecurity.made_in(folder)), "secure_kafka")


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory):
    server = FerretDB(tmp_path_factory.mktemp("ferretdb"), port=free_port())
    yield from _running(server, "ferretdb", f" {server.postgres.version}")


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus' own rule checker, for the chart's rules (tests/deploy/test_rules.py)."""
    path = shutil.which("promtool")
    assert path, "promtool is not installed (Debian: apt-get install prometheus)"
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split()[2]
    _started["promtool"] = f"Prometheus {version} promtool"
    return path


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory):
    """The OpenID provider for the sign-in tests; each module makes a realm of its own in it."""
    yield from _running(Keycloak(tmp_path_factory.mktemp("keycloak"), port=free_port()), "keycloak")


CLUSTER_TESTS = "tests/controlplane/"
BUILD_LOG = CACHE / "logs" / "controlplane-build.log"
BUILD_WAIT_S = 3600
_background: dict[str, subprocess.Popen] = {}  # "controlplane": the build started at collection


@pytest.fixture(scope="session")
def controlplane_binaries():
    """The control plane's and the node's programs, built: by the background build this session started, or here."""
    build = _background.get("controlplane")
    if build is not None:
        until(lambda: build.poll() is not None, BUILD_WAIT_S, f"the control plane's Go programs (see {BUILD_LOG})",
              interval=5)
        if build.returncode != 0:
            tail = "\n".join(BUILD_LOG.read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"building the control plane failed (exit {build.returncode}); {BUILD_LOG}:\n{tail}")
    elif controlplane.missing():
        run_steps(controlplane_steps())
    assert not controlplane.missing(), controlplane.missing()
    return controlplane.BIN


@pytest.fixture(scope="module")
def kube_cluster(request, tmp_path_factory, controlplane_binaries):
    """The control plane with KEDA, the real node, and Kafka and FerretDB on the node's bridge
    (scripts/controlplane/local.py), for one module: the node's network and kube-proxy's rules are the
    host's, so only one cluster runs at a time (test_make_cluster.py starts its own). A module that sets
    KAFKA_SASL = True gets a Kafka with SASL/SCRAM and ACLs, and the chart authenticating to it."""
    from scripts.controlplane.local import LocalCluster

    secure = getattr(request.module, "KAFKA_SASL", False)
    with LocalCluster(tmp_path_factory.mktemp("cluster"), kafka_security=secure) as local:
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
    # What `make test` built or fetched before this session (a cold run), and in it (the images), and how long each
    # took: from the cache's record (scripts/stack/builds.py).
    terminalreporter.write_line(f"built in the last hour: {builds.summary(since=_session_began - 3600)}")


# Fixtures that start a server or need a build: a test marked `unit` (make check) may use none of them.
NEEDS_SERVERS = {*REAL, "system", "running_system", "signed_in", "secure_system", "browser"}


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected: make check starts no build
def pytest_collection_modifyitems(items):
    _fixtures_of.update((item.nodeid, tuple(item.fixturenames)) for item in items)
    wrong = [item.nodeid for item in items
             if item.get_closest_marker("unit") and NEEDS_SERVERS & set(item.fixturenames)]
    if wrong:
        raise pytest.UsageError(f"marked unit, yet asking for a server: {wrong}")
    items.sort(key=lambda item: item.nodeid.startswith(CLUSTER_TESTS))  # the cluster's last, each group in order
    if any(item.nodeid.startswith(CLUSTER_TESTS) for item in items) and controlplane.missing():
        BUILD_LOG.unlink(missing_ok=True)
        _background["controlplane"] = in_background("controlplane", BUILD_LOG)


def pytest_sessionfinish(session):
    """A background build still running (the session was cut short) is stopped with everything it started."""
    build = _background.pop("controlplane", None)
    if build is not None and build.poll() is None:
        os.killpg(build.pid, signal.SIGTERM)
        try:
            build.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(build.pid, signal.SIGKILL)

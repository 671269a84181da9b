"""Session fixtures: a real Apache Kafka (KRaft) and a real FerretDB, started here and stopped at the end.

They listen on free loopback ports, in a temporary folder, so `make dev` can run beside the tests.
Every test that uses `system` gets its own topic, consumer group and database.
"""

from __future__ import annotations

import pytest

from scripts.stack import FerretDB, KafkaServer, free_port

from .support import System, sanitize


def _running(server):
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    yield from _running(KafkaServer(tmp_path_factory.mktemp("kafka"), port=free_port()))


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory):
    yield from _running(FerretDB(tmp_path_factory.mktemp("ferretdb"), port=free_port()))


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

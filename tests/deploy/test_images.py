"""The web and api images, built from their Dockerfiles with podman (scripts/images.py) and run as containers.

Where Docker Hub is unreachable (here, CI) the base is a STAND-IN for python:3.11.14-slim-bookworm made from
Debian's packages; the session summary says which base was used (the `images` fixture, conftest.py)."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import pytest
import requests
from kafka import KafkaConsumer

from scripts.images import SERVICES, podman, size_mib
from scripts.loadgen.keyed import Traffic
from scripts.stack.process import free_port
from scripts.stack.waiting import http_ready, until

CHART_GRACE_S = {"web": 40, "api": 45}  # helm/purchase-system/values.yaml terminationGracePeriodSeconds


class Container:
    """One container of an image, on the host's network (its port is a free one of 127.0.0.1), hardened as the
    chart runs it: user 10001, read-only root filesystem with a /tmp tmpfs, no capabilities."""

    def __init__(self, image: str, env: dict[str, str], port: int | None = None, command: tuple[str, ...] = ()):
        self.name = f"purchase-test-{uuid.uuid4().hex[:8]}"
        self.port = port or free_port()
        env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        podman("run", "-d", "--name", self.name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
                      "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                      *(arg for key, value in env.items() for arg in ("-e", f"{key}={value}")), image, *command)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", self.name, *command, check=False)

    def signal(self, signum: signal.Signals) -> None:
        podman("kill", "--signal", signum.name, self.name)

    def wait(self, timeout: float) -> int:
        return int(podman("wait", self.name, timeout=timeout).stdout.strip())

    def logs(self) -> str:
        return podman("logs", self.name, check=False).stdout

    def remove(self) -> None:
        podman("rm", "--force", "--time", "0", self.name, check=False)


@pytest.fixture
def containers():
    made: list[Container] = []
    yield lambda *args, **kwargs: made.append(Container(*args, **kwargs)) or made[-1]
    for container in made:
        container.remove()


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_non_root_read_only_without_capabilities_and_answers_healthz(images, containers, service):
    container = containers(images[service], {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "MONGODB_URI":
                                            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"})
    until(lambda: http_ready(f"{container.url}/healthz"), 60, f"{service} /healthz")
    assert container.exec("id", "-u").stdout.strip() == "10001"
    status = container.exec("cat", "/proc/1/status").stdout
    capabilities = {line.split(":")[0]: int(line.split()[1], 16) for line in status.splitlines()
                    if line.startswith("Cap")}
    assert capabilities["CapEff"] == capabilities["CapPrm"] == capabilities["CapBnd"] == 0, capabilities
    written = container.exec("touch", "/app/services/x")
    assert written.returncode != 0 and "Read-only file system" in written.stderr
    # ... and says what is missing: api is not ready without its database; web is, once its startup grace has
    # passed (it serves history reads and answers buys 503 JSON), and its body says buys cannot be taken.
    if service == "api":
        readiness = requests.get(f"{container.url}/readyz", timeout=10)
        assert readiness.status_code == 503 and readiness.json()["status"] != "ready", readiness.text
    else:
        until(lambda: http_ready(f"{container.url}/readyz"), 30, "web ready without Kafka")
        readiness = requests.get(f"{container.url}/readyz", timeout=10)
        assert readiness.json()["buys"] == "unavailable" and not readiness.json()["kafka"]["reachable"], readiness.text


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_holds_no_compiler_and_no_package_cache(images, service):
    found = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", images[service], "-c",
                          "for tool in gcc cc c++ clang make ld; do command -v $tool; done;"
                          "ls /var/cache/apt/archives/*.deb /root/.cache/pip /home/*/.cache/pip /tmp/* 2>/dev/null;"
                          "find / -xdev -name '*.whl' 2>/dev/null | grep -v /usr/share/python-wheels", check=False)
    assert found.stdout.strip() == "", found.stdout
    size = size_mib(images[service])
    print(f"\n{images[service]}: {size:.0f} MiB")
    assert size < 400


def test_sigterm_stops_the_web_container_gracefully_within_the_chart_grace_period(images, containers, system):
    system.start_api()
    web = containers(images["web"], {**system.env}, port=system.web_port)
    until(lambda: http_ready(f"{web.url}/readyz"), 60, "web in its container ready")
    with Traffic(web.url, users=9, burst=50, run="container-sigterm") as traffic:
        until(lambda: traffic.accepted_ids(), 20, "traffic to be flowing")
        time.sleep(0.3)
        signalled = time.monotonic()
        web.signal(signal.SIGTERM)
        code = web.wait(CHART_GRACE_S["web"] + 5)
        took = time.monotonic() - signalled
        until(lambda: any(r.cut for r in traffic.requests), 10, "buys sent after web stopped")
    accepted = traffic.accepted_ids()
    refused = [r.status for r in traffic.requests if r.status != 202]
    print(f"\n[web container SIGTERM] exit {code} after {took:.1f} s; sent={len(traffic.requests)} "
          f"accepted={len(accepted)} refused_or_cut={len(refused)}")
    assert code == 0, web.logs()[-2000:]
    assert took < CHART_GRACE_S["web"]
    assert 0 < len(accepted) < len(traffic.requests), "SIGTERM did not land mid-traffic"
    assert set(refused) <= {None, 503}
    until(lambda: set(accepted) <= set(system.stored_ids()), 30, "every accepted purchase stored")
    assert sorted(system.stored_ids()) == sorted(accepted)


def test_sigterm_stops_the_api_container_gracefully_and_it_leaves_the_group(images, containers, system):
    api = containers(images["api"], {**system.env}, port=system.api_port)
    until(lambda: http_ready(f"{api.url}/readyz"), 60, "api in its container ready")
    until(lambda: system.group_members(), 30, "the consumer in its group")
    signalled = time.monotonic()
    api.signal(signal.SIGTERM)
    code = api.wait(CHART_GRACE_S["api"] + 5)
    took = time.monotonic() - signalled
    print(f"\n[api container SIGTERM] exit {code} after {took:.1f} s")
    assert code == 0 and took < CHART_GRACE_S["api"], api.logs()[-2000:]
    assert system.group_members() == []
    assert "consumer stopped and left the group" in api.logs()


def test_the_topics_job_command_runs_in_the_api_image_against_the_real_kafka(images, kafka):
    """As the chart's Job runs it: its `command` replaces the image's entrypoint."""
    topic = f"image-topics-{uuid.uuid4().hex[:6]}"
    name = f"purchase-test-{topic}"
    try:
        done = podman("run", "--name", name, "--network", "host", "--read-only", "--user", "10001:10001",
                             "--cap-drop", "ALL", "-e", f"KAFKA_BOOTSTRAP_SERVERS={kafka.address}",
                             "-e", f"KAFKA_TOPIC={topic}", "-e", "TOPIC_PARTITIONS=8",
                             "--entrypoint", '["python", "-m", "services.api.topics"]', images["api"],
                             check=False, timeout=120)
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"topics ready"' in done.stdout + done.stderr
    consumer = KafkaConsumer(bootstrap_servers=kafka.address)
    try:
        assert len(consumer.partitions_for_topic(topic)) == 8
        assert len(consumer.partitions_for_topic(f"{topic}.dlq")) == 1
    finally:
        consumer.close()

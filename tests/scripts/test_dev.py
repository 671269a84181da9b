"""scripts/dev.py (`make dev`), run as a user runs it, against the session's Kafka and FerretDB (named in the
environment, so it starts only web and api): the README's two curl calls, then Ctrl-C."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from kafka import KafkaConsumer

from scripts.stack.paths import ROOT
from scripts.stack.process import free_port, port_open
from scripts.stack.waiting import http_ready, until

from ..support import sanitize


def dev_environment(kafka, ferretdb, tmp_path, request, **settings: str) -> dict[str, str]:
    """make dev's environment against the session's Kafka and FerretDB (so it starts only web and api), with names
    and ports of the test's own."""
    name = sanitize(request.node.name, 40)
    ports = {key: str(free_port()) for key in ("WEB_PORT", "API_PORT", "WEB_METRICS_PORT", "API_METRICS_PORT")}
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.address, "MONGODB_URI": ferretdb.address,
            "KAFKA_TOPIC": f"purchases-{name}", "KAFKA_CONSUMER_GROUP": f"group-{name}",
            "MONGODB_DATABASE": f"db_{name}", "DEV_DIR": str(tmp_path), **ports, **settings}


@contextmanager
def running_dev(env: dict[str, str], timeout: float = 60):
    """scripts/dev.py with `env`, until its web is ready: (the process, web's URL); Ctrl-C at the end. The process's
    output is its `output` attribute afterwards."""
    dev = subprocess.Popen([sys.executable, "-m", "scripts.dev"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    web = f"http://127.0.0.1:{env['WEB_PORT']}"
    try:
        until(lambda: http_ready(f"{web}/readyz") or dev.poll() is not None, timeout, "make dev's web to be ready")
        assert dev.poll() is None, dev.stdout.read()
        yield dev, web
    finally:
        dev.send_signal(signal.SIGINT)  # Ctrl-C
        dev.output = dev.communicate(timeout=90)[0]


def test_make_dev_shows_a_bought_purchase_in_history_and_ctrl_c_stops_what_it_started(kafka, ferretdb, tmp_path,
                                                                                     request):
    env = dev_environment(kafka, ferretdb, tmp_path, request)
    name, api_port = env["KAFKA_TOPIC"].removeprefix("purchases-"), env["API_PORT"]
    with running_dev(env) as (dev, web):
        consumer = KafkaConsumer(bootstrap_servers=kafka.address)
        assert len(consumer.partitions_for_topic(f"purchases-{name}")) == 8, "the topic make dev created"
        consumer.close()

        sent = time.monotonic()
        answer = requests.post(f"{web}/api/buy", headers={"Host": "purchase.local"},
                               json={"username": "elad", "userId": "555", "price": 12.00}, timeout=10)
        assert answer.status_code == 202, answer.text
        purchase_id = answer.json()["id"]
        history = until(lambda: requests.get(f"{web}/api/getAllUserBuys/555", timeout=5).json() or None,
                        10, "the purchase in the history", interval=0.02)
        print(f"\n[make dev] purchase visible through getAllUserBuys after {time.monotonic() - sent:.3f} s")
        assert [p["id"] for p in history] == [purchase_id]
        assert (history[0]["username"], history[0]["userId"], history[0]["price"]) == ("elad", "555", 12.0)
    output = dev.output
    assert dev.returncode == 0, output
    assert output.index("stopping web") < output.index("stopping api"), output
    assert not http_ready(f"{web}/healthz") and not http_ready(f"http://127.0.0.1:{api_port}/healthz")
    assert (tmp_path / "web.log").exists() and (tmp_path / "api.log").exists()


@pytest.mark.parametrize("moment", ["starting Kafka", "formatting Kafka storage (node 1): done", "starting FerretDB",
                                    "starting api", "starting web"])
def test_ctrl_c_at_any_moment_of_make_devs_start_stops_everything_it_started(tmp_path, moment):
    """Its own Kafka and FerretDB, on free ports; Ctrl-C as soon as `moment` appears in its output."""
    ports = {"KAFKA_PORT": free_port(), "KAFKA_CONTROLLER_PORT": free_port(), "FERRETDB_PORT": free_port(),
             "WEB_PORT": free_port(), "API_PORT": free_port(), "WEB_METRICS_PORT": free_port(),
             "API_METRICS_PORT": free_port()}
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI")}
    env.update({name: str(port) for name, port in ports.items()}, DEV_DIR=str(tmp_path), LOG_LEVEL="INFO")
    dev = subprocess.Popen([sys.executable, "-m", "scripts.dev"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in dev.stdout] + [lines.put(None)])
    reader.start()
    seen: list[str] = []
    try:
        while not any(moment in line for line in seen):
            line = lines.get(timeout=90)  # queue.Empty: the moment never came
            assert line is not None, f"make dev ended before {moment!r}:\n{''.join(seen)}"
            seen.append(line)
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)
    finally:
        if dev.poll() is None:
            dev.send_signal(signal.SIGINT)  # what Ctrl-C would do: it stops its servers
            dev.wait(timeout=60)
        reader.join(10)
    output = "".join(seen) + "".join(iter(lines.get_nowait, None))
    assert dev.returncode == 0, output
    still_open = [name for name, port in ports.items() if port_open(port)]
    assert not still_open, f"left running: {still_open}\n{output}"
    assert not processes_mentioning(str(tmp_path)), output


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line names `text` (Kafka's properties, FerretDB's data folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def test_make_dev_with_auth_oidc_starts_keycloak_beside_the_stack_and_web_signs_customers_in(kafka, ferretdb, tmp_path,
                                                                                            request):
    """`make dev AUTH=oidc`: Keycloak started with the stack, web's sign-in on against its shop realm; a customer's
    token buys, no token is a 401; Ctrl-C stops Keycloak too."""
    from scripts.stack.token import access_token

    keycloak_port = free_port()
    env = dev_environment(kafka, ferretdb, tmp_path, request, AUTH="oidc", KEYCLOAK_PORT=str(keycloak_port))
    with running_dev(env, timeout=240) as (dev, web):
        settings = requests.get(f"{web}/auth/config", timeout=10).json()
        assert settings["mode"] == "oidc" and settings["clientId"] == "shop-web"
        assert settings["issuer"] == f"http://127.0.0.1:{keycloak_port}/realms/shop"
        token = access_token(settings["issuer"], "shop-web", "alice", "alice-password")
        bought = requests.post(f"{web}/api/buy", json={"price": 3.0}, timeout=10,
                               headers={"Authorization": f"Bearer {token}"})
        assert bought.status_code == 202, bought.text
        assert bought.json()["purchase"]["username"] == "Alice Shopper"
        assert requests.post(f"{web}/api/buy", json={"price": 3.0}, timeout=10).status_code == 401
    assert dev.returncode == 0, dev.output
    assert "sign in as alice / alice-password" in dev.output
    assert not port_open(keycloak_port), "Keycloak stopped with make dev"

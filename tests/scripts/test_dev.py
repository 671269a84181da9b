"""scripts/dev.py (`make dev`), run as a user runs it, against the session's Kafka and FerretDB (named in the
environment, so it starts only web and api): the README's two curl calls, then Ctrl-C."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from kafka import KafkaConsumer

from scripts.stack.process import ROOT, free_port, http_ready, port_open

from ..support import sanitize, wait_until


def test_make_dev_shows_a_bought_purchase_in_history_and_ctrl_c_stops_what_it_started(kafka, ferretdb, tmp_path,
                                                                                     request):
    name = sanitize(request.node.name)[:40]
    web_port, api_port = free_port(), free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "MONGODB_URI": ferretdb.uri,
           "KAFKA_TOPIC": f"purchases-{name}", "KAFKA_CONSUMER_GROUP": f"group-{name}",
           "MONGODB_DATABASE": f"db_{name}", "WEB_PORT": str(web_port), "API_PORT": str(api_port),
           "DEV_DIR": str(tmp_path)}
    dev = subprocess.Popen([sys.executable, "-m", "scripts.dev"], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    web = f"http://127.0.0.1:{web_port}"
    try:
        wait_until(lambda: http_ready(f"{web}/readyz") or dev.poll() is not None, 60, "make dev's web to be ready")
        assert dev.poll() is None, dev.stdout.read()

        consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
        assert len(consumer.partitions_for_topic(f"purchases-{name}")) == 8, "the topic make dev created"
        consumer.close()

        sent = time.monotonic()
        answer = requests.post(f"{web}/api/buy", headers={"Host": "purchase.local"},
                               json={"username": "elad", "userId": "555", "price": 12.00}, timeout=10)
        assert answer.status_code == 202, answer.text
        purchase_id = answer.json()["id"]
        history = wait_until(lambda: requests.get(f"{web}/api/getAllUserBuys/555", timeout=5).json() or None,
                             10, "the purchase in the history", interval=0.02)
        print(f"\n[make dev] purchase visible through getAllUserBuys after {time.monotonic() - sent:.3f} s")
        assert [p["id"] for p in history] == [purchase_id]
        assert (history[0]["username"], history[0]["userId"], history[0]["price"]) == ("elad", "555", 12.0)
    finally:
        dev.send_signal(signal.SIGINT)  # Ctrl-C
        output = dev.communicate(timeout=60)[0]
    assert dev.returncode == 0, output
    assert output.index("stopping web") < output.index("stopping api"), output
    assert not http_ready(f"{web}/healthz") and not http_ready(f"http://127.0.0.1:{api_port}/healthz")
    assert (tmp_path / "web.log").exists() and (tmp_path / "api.log").exists()


@pytest.mark.parametrize("moment", ["starting Kafka", "formatting Kafka storage (node 1): done", "starting FerretDB",
                                    "starting api", "starting web"])
def test_ctrl_c_at_any_moment_of_make_devs_start_stops_everything_it_started(tmp_path, moment):
    """Its own Kafka and FerretDB, on free ports; Ctrl-C as soon as `moment` appears in its output."""
    ports = {"KAFKA_PORT": free_port(), "KAFKA_CONTROLLER_PORT": free_port(), "FERRETDB_PORT": free_port(),
             "WEB_PORT": free_port(), "API_PORT": free_port()}
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

"""scripts/dev.py (`make dev`), run as a user runs it, against the session's Kafka and FerretDB (named in the
environment, so it starts only web and api): the README's two curl calls, then Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

import requests
from kafka import KafkaConsumer

from scripts.stack import ROOT, free_port

from ..support import ready, sanitize, wait_until


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
        wait_until(lambda: ready(f"{web}/readyz") or dev.poll() is not None, 60, "make dev's web to be ready")
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
    assert not ready(f"{web}/healthz") and not ready(f"http://127.0.0.1:{api_port}/healthz")
    assert (tmp_path / "web.log").exists() and (tmp_path / "api.log").exists()

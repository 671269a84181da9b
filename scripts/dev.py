"""`make dev`: Kafka, the MongoDB-wire server (FerretDB on its own PostgreSQL), web on :8080 and api on :8081,
until Ctrl-C.

KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI, when set, name servers to use instead of starting our own.
Data lives in .dev/ (git-ignored; DEV_DIR names another folder) and survives restarts. Ctrl-C stops
everything this started, services first (so web flushes and api commits), then Kafka and FerretDB.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from pathlib import Path

from scripts.stack import ROOT, FerretDB, KafkaServer, PythonService, Server, StackError, create_topics, say

DATA = Path(os.environ.get("DEV_DIR") or ROOT / ".dev")
WEB_PORT = int(os.environ.get("WEB_PORT", "8080"))
API_PORT = int(os.environ.get("API_PORT", "8081"))
KAFKA_PORT = int(os.environ.get("KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("KAFKA_CONTROLLER_PORT") or KAFKA_PORT + 1)
FERRETDB_PORT = int(os.environ.get("FERRETDB_PORT", "27017"))
POSTGRES_PORT = int(os.environ.get("POSTGRES_PORT", "0")) or None  # FerretDB's PostgreSQL; default: a free port


def wait_ready(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def main() -> int:
    os.chdir(ROOT)
    started: list[Server] = []
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    def start(server: Server) -> None:
        started.append(server)  # before start(): a Ctrl-C while it starts must stop it too
        server.start()
        # Should a library catch the KeyboardInterrupt while the server starts, the signal is still acted on.
        if stopping:
            raise KeyboardInterrupt

    # SIGINT too, explicitly: a shell script that starts `make dev &` hands it SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    try:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            kafka = KafkaServer(DATA / "kafka", port=KAFKA_PORT, controller_port=KAFKA_CONTROLLER_PORT)
            say(f"starting Kafka on 127.0.0.1:{KAFKA_PORT}")
            start(kafka)
            bootstrap = kafka.bootstrap
        mongodb_uri = os.environ.get("MONGODB_URI")
        if not mongodb_uri:
            ferretdb = FerretDB(DATA / "ferretdb", port=FERRETDB_PORT, postgres_port=POSTGRES_PORT)
            say(f"starting FerretDB on 127.0.0.1:{FERRETDB_PORT}, on PostgreSQL at 127.0.0.1:{ferretdb.postgres.port}")
            start(ferretdb)
            mongodb_uri = ferretdb.uri
        topic = os.environ.get("KAFKA_TOPIC", "purchases")
        create_topics(bootstrap, topic, os.environ.get("KAFKA_DLQ_TOPIC"))
        if stopping:
            raise KeyboardInterrupt

        env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "MONGODB_URI": mongodb_uri, "HOST": "127.0.0.1",
               "API_URL": f"http://127.0.0.1:{API_PORT}"}
        for name, port in (("api", API_PORT), ("web", WEB_PORT)):
            service = PythonService(name, DATA, port, env)
            say(f"starting {name} on 127.0.0.1:{port}")
            start(service)
            if not wait_ready(f"http://127.0.0.1:{port}/readyz"):
                raise StackError(f"{name} did not become ready; see {service.log_path}")

        print(f"""
  web   http://localhost:{WEB_PORT}/          (customer page; POST /api/buy)
  api   http://localhost:{API_PORT}/api/purchases/<userId>
  kafka {bootstrap}   mongodb {mongodb_uri}
  logs  {DATA}/*.log

  curl -i -X POST http://localhost:{WEB_PORT}/api/buy -H 'Content-Type: application/json' \\
       -d '{{"username":"elad","userId":"555","price":12.00}}'
  curl -s http://localhost:{WEB_PORT}/api/getAllUserBuys/555

  Ctrl-C stops everything.
""", flush=True)
        while not stopping and all(s.process is not None and s.process.poll() is None for s in started):
            time.sleep(0.5)
        if stopping:
            return 0
        dead = [s.name for s in started if s.process is not None and s.process.poll() is not None]
        say(f"{', '.join(dead)} exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for server in reversed(started):
            say(f"stopping {server.name}")
            server.stop()


if __name__ == "__main__":
    sys.exit(main())

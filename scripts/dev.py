"""`make dev`: Kafka, the MongoDB-wire server (FerretDB on its own PostgreSQL), web on :8080 and api on :8081,
until Ctrl-C. `make dev AUTH=oidc` (AUTH=oidc in the environment): also Keycloak on :8180 with a shop realm (two
customers, alice and bob, the page's client), and web's sign-in on against it.

KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI, when set, name servers to use instead of starting our own.
Data lives in .dev/ (git-ignored; DEV_DIR names another folder) and survives restarts. Ctrl-C stops
everything this started, services first (so web flushes and api commits), then Kafka and FerretDB.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from scripts.stack.errors import StackError, say
from scripts.stack.ferretdb import FerretDB
from scripts.stack.kafka import KafkaServer
from scripts.stack.keycloak import Keycloak, ShopRealm
from scripts.stack.paths import ROOT
from scripts.stack.service import Names
from scripts.stack.system import System

DATA = Path(os.environ.get("DEV_DIR") or ROOT / ".dev")
WEB_PORT = int(os.environ.get("WEB_PORT", "8080"))
API_PORT = int(os.environ.get("API_PORT", "8081"))
WEB_METRICS_PORT = int(os.environ.get("WEB_METRICS_PORT", "9080"))
API_METRICS_PORT = int(os.environ.get("API_METRICS_PORT", "9081"))
KAFKA_PORT = int(os.environ.get("KAFKA_PORT", "9092"))
KAFKA_CONTROLLER_PORT = int(os.environ.get("KAFKA_CONTROLLER_PORT") or KAFKA_PORT + 1)
FERRETDB_PORT = int(os.environ.get("FERRETDB_PORT", "27017"))
KEYCLOAK_PORT = int(os.environ.get("KEYCLOAK_PORT", "8180"))
AUTH = (os.environ.get("AUTH") or "off").lower()
POSTGRES_PORT = int(os.environ.get("POSTGRES_PORT", "0")) or None  # FerretDB's PostgreSQL; default: a free port


def local_system() -> System:
    """Our Kafka and FerretDB in DATA, or the servers KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI name; the topic, group
    and database the services' own variables name."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or KafkaServer(
        DATA / "kafka", port=KAFKA_PORT, controller_port=KAFKA_CONTROLLER_PORT)
    mongodb = os.environ.get("MONGODB_URI") or FerretDB(DATA / "ferretdb", port=FERRETDB_PORT,
                                                        postgres_port=POSTGRES_PORT)
    return System(DATA, kafka, mongodb, Names.from_env(os.environ), api_port=API_PORT, web_port=WEB_PORT,
                  metrics_ports={"web": WEB_METRICS_PORT, "api": API_METRICS_PORT})


def start_sign_in(system: System) -> tuple[Keycloak, ShopRealm]:
    """Keycloak beside the stack (stopped with it), its shop realm, and web's settings for it."""
    keycloak = Keycloak(DATA / "keycloak", port=KEYCLOAK_PORT)
    say(f"starting Keycloak on {keycloak.address} (the OpenID provider for AUTH=oidc)")
    system.started.append(keycloak)  # stopped last, with the servers
    keycloak.start()
    origins = [f"http://localhost:{WEB_PORT}", f"http://127.0.0.1:{WEB_PORT}"]
    try:
        shop = keycloak.create_shop(ShopRealm(redirect_origins=origins))
    except StackError:  # kept from an earlier `make dev AUTH=oidc` (DEV_DIR keeps Keycloak's data)
        shop = ShopRealm(redirect_origins=origins)
    system.extra_env.update(keycloak.web_settings(shop))
    return keycloak, shop


def main() -> int:
    os.chdir(ROOT)
    if AUTH not in ("off", "oidc"):
        say(f"AUTH must be 'off' or 'oidc', not {AUTH!r}")
        return 2
    system = local_system()
    sign_in = None
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    def step(action) -> None:
        action()
        # Should a library catch the KeyboardInterrupt meanwhile, the signal is still acted on.
        if stopping:
            raise KeyboardInterrupt

    # SIGINT too, explicitly: a shell script that starts `make dev &` hands it SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    try:
        for action in (system.start_servers, system.create_topics):
            step(action)
        if AUTH == "oidc":
            sign_in = start_sign_in(system)
        for action in (system.start_api, system.start_web):
            step(action)
        bootstrap, mongodb_uri = system.bootstrap, system.mongodb_uri
        print(f"""
  web   http://localhost:{WEB_PORT}/          (customer page; POST /api/buy)
  api   http://localhost:{API_PORT}/api/purchases/<userId>
  metrics  http://localhost:{WEB_METRICS_PORT}/metrics (web, with the consumer group's lag)   \
           http://localhost:{API_METRICS_PORT}/metrics (api)
  kafka {bootstrap}   mongodb {mongodb_uri}
  logs  {DATA}/*.log

  curl -i -X POST http://localhost:{WEB_PORT}/api/buy -H 'Content-Type: application/json' \\
       -d '{{"username":"elad","userId":"555","price":12.00}}'
  curl -s http://localhost:{WEB_PORT}/api/getAllUserBuys/555

  Ctrl-C stops everything.
""", flush=True)
        if sign_in is not None:
            keycloak, shop = sign_in
            people = ", ".join(f"{c.username} / {c.password}" for c in shop.customers)
            print(f"""  sign-in is on: open http://localhost:{WEB_PORT}/ and sign in as {people}
  provider  {keycloak.issuer(shop.realm)}   (admin console {keycloak.address}/admin, admin / admin-password)
  TOKEN=$({sys.executable} -m scripts.stack.token {keycloak.issuer(shop.realm)} {shop.client_id} alice alice-password)
""", flush=True)
        while not stopping and all(s.process is not None and s.process.poll() is None for s in system.started):
            time.sleep(0.5)
        if stopping:
            return 0
        dead = [s.name for s in system.started if s.process is not None and s.process.poll() is not None]
        say(f"{', '.join(dead)} exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        system.stop()


if __name__ == "__main__":
    sys.exit(main())

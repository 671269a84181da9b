"""The whole system on this machine: Kafka, FerretDB, api and web, composed. `make dev`, `make bench` and the tests
all start it through this class.

    system = System(folder, KafkaServer(...), FerretDB(...))   # servers of ours: start_servers() starts them
    system.start_servers(); system.create_topics()
    system.start_api(); system.start_web()                     # each waited for on its /readyz
    ...
    system.stop()                                              # what it started, services first

Kafka and MongoDB may also be servers already running (the test session's), or addresses (`make dev` with
KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI): then start_servers() leaves them be. `beside()` makes another system on
the same servers with names of its own (a test's or a benchmark's own topic, group and database).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .errors import say
from .ferretdb import FerretDB
from .kafka import KafkaServer, create_topics
from .kafka_cluster import KafkaCluster
from .kafka_security import KafkaSecurity
from .process import Server, free_port
from .service import Names, PythonService, Wiring
from .waiting import wait_http

Kafka = KafkaServer | KafkaCluster | str
MongoDB = FerretDB | str


class System:
    def __init__(self, workdir: Path, kafka: Kafka, mongodb: MongoDB, names: Names | None = None,
                 extra_env: Mapping[str, str] | None = None, api_port: int | None = None,
                 web_port: int | None = None, metrics_ports: Mapping[str, int] | None = None) -> None:
        self.workdir = Path(workdir)
        self.kafka, self.mongodb = kafka, mongodb
        self.names = names or Names()
        self.extra_env = dict(extra_env or {})
        self.api_port, self.web_port = api_port or free_port(), web_port or free_port()
        self.metrics_ports = dict(metrics_ports or {})  # by service name; a free port for one not named
        self.started: list[Server | KafkaCluster] = []  # in order; stop() goes backwards
        self.api: PythonService | None = None
        self.web: PythonService | None = None
        self.more_apis: list[PythonService] = []

    def beside(self, names: Names, extra_env: Mapping[str, str] | None = None) -> System:
        """Another system on the same Kafka and MongoDB, with its own names, services and ports."""
        return System(self.workdir / names.topic, self.kafka, self.mongodb, names, extra_env)

    # -- where things are --------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return self.kafka if isinstance(self.kafka, str) else self.kafka.address

    @property
    def mongodb_uri(self) -> str:
        return self.mongodb if isinstance(self.mongodb, str) else self.mongodb.address

    @property
    def api_url(self) -> str:
        return f"http://{self.place('api')[0]}:{self.api_port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.place('web')[0]}:{self.web_port}"

    @property
    def wiring(self) -> Wiring:
        return Wiring(self.bootstrap, self.mongodb_uri, self.names, self.api_url, self.extra_env)

    @property
    def env(self) -> dict[str, str]:
        """The environment the services start with."""
        return self.wiring.environment()

    # -- starting ----------------------------------------------------------------------------------------

    def _start(self, server: Server | KafkaCluster) -> None:
        self.started.append(server)  # before start(): one interrupted while starting is stopped too
        server.start()

    def start_servers(self) -> None:
        """Kafka and FerretDB, when they are servers of ours not started yet."""
        for server, what in ((self.kafka, "Kafka"), (self.mongodb, "FerretDB (on PostgreSQL)")):
            if not isinstance(server, str) and server not in self.started:
                say(f"starting {what} at {self.bootstrap if server is self.kafka else self.mongodb_uri}")
                self._start(server)

    @property
    def kafka_security(self) -> KafkaSecurity | None:
        """The SASL principals and ACLs of a Kafka of ours that has them (kafka_security.py)."""
        return getattr(self.kafka, "security", None)

    def create_topics(self) -> None:
        """The system's topics; on a Kafka with ACLs, also its principals' credentials and ACLs on its names."""
        security = self.kafka_security
        admin = self.bootstrap if security is None else security.config(self.bootstrap)
        create_topics(admin, self.names.topic, self.names.dead_letter_topic,
                      replication_factor=getattr(self.kafka, "replication_factor", 1))
        if security is not None:
            security.provision(self.bootstrap, self.names.topic, self.names.dead_letter_topic, self.names.group)

    def _service(self, name: str, folder: Path, port: int, wait_ready: bool, env: Mapping[str, str] | None = None,
                 metrics_port: int | None = None, module: str | None = None) -> PythonService:
        """`metrics_port`: default, the one `metrics_ports` names for it (else a free one)."""
        metrics_port = metrics_port or self.metrics_ports.get(name)
        credentials = {} if self.kafka_security is None else self.kafka_security.client_env(name)
        host, netns = self.place(name)
        service = PythonService(name, folder, port, {**self.env, **credentials, **(env or {}), "HOST": host},
                                metrics_port, module)
        service.host, service.netns = host, netns
        say(f"starting {name} on {service.address}")
        self._start(service)
        if wait_ready:
            wait_http(f"{service.address}/readyz", 60 if netns else 30, service)
        return service

    def place(self, service: str) -> tuple[str, str | None]:
        """Where a service runs: its address, and its network namespace (None: this machine's). Loopback here; the
        network-fault tests put each on a host of its own."""
        return "127.0.0.1", None

    def start_api(self, wait_ready: bool = True, env: Mapping[str, str] | None = None,
                  module: str | None = None) -> PythonService:
        """`env`: settings for this api alone, over the system's; `module`: a variant to run instead (the bench's)."""
        self.api = self._service("api", self.workdir, self.api_port, wait_ready, env, module=module)
        return self.api

    def start_another_api(self) -> PythonService:
        """One more api in the same group (its own port and log folder), stopped with the system."""
        api = self._service("api", self.workdir / f"api-{len(self.more_apis) + 2}", free_port(), wait_ready=False,
                            metrics_port=free_port())
        self.more_apis.append(api)
        return api

    def start_web(self, env: Mapping[str, str] | None = None, module: str | None = None) -> PythonService:
        """`env`: settings for this web alone, over the system's (sign-in, for one); `module`: a variant (bench)."""
        self.web = self._service("web", self.workdir, self.web_port, wait_ready=True, env=env, module=module)
        return self.web

    def stop(self) -> None:
        """What it started, last first: web, then api (so web's producer flushes and api commits), then the
        servers."""
        for server in reversed(self.started):
            if getattr(server, "process", None) is not None and server.process.poll() is None:
                say(f"stopping {server.name}")
            server.stop()
        self.started.clear()

"""Kafka that authenticates and authorizes: SASL/SCRAM-SHA-512 on its client listener and Kafka's StandardAuthorizer
with ACLs, one principal per part of the system, each allowed what it does and nothing more. The same mechanism as
the chart's kafkaClient.sasl values and Bitnami's sasl.client ones.

    security = KafkaSecurity.made_in(folder)            # principals and their passwords (kept in the folder)
    KafkaServer(folder, port, security=security)        # the broker with SASL and ACLs
    security.provision(bootstrap, topic, dlq, group)    # the principals' SCRAM credentials and ACLs

| principal | may |
| --- | --- |
| admin  | everything (a super user; the broker's own connections between its listeners too) |
| web    | write the purchases topic (and describe it); describe the consumer group (the lag it exports) |
| api    | read the purchases topic and commit the group; write the dead-letter topic |
| topics | create the purchases and dead-letter topics (the chart's topics Job) |
| keda   | describe the group and the topic (KEDA's Kafka scaler reads the lag) |

The controller listener stays plaintext (KRaft's broker and controller speak on it), on loopback or the node
address: its ANONYMOUS principal is a super user, so nothing else may reach that port.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from services.core.config import KafkaConfig

MECHANISM = "SCRAM-SHA-512"
PRINCIPALS = ("admin", "web", "api", "topics", "keda")


@dataclass(frozen=True)
class KafkaSecurity:
    passwords: dict[str, str]  # principal -> password

    @classmethod
    def made_in(cls, folder: Path) -> KafkaSecurity:
        """The principals' passwords, made once and kept in `folder` (a restarted broker keeps its credentials)."""
        path = Path(folder) / "sasl-credentials.json"
        if path.exists():
            return cls(json.loads(path.read_text()))
        folder.mkdir(parents=True, exist_ok=True)
        passwords = {name: secrets.token_urlsafe(18) for name in PRINCIPALS}
        path.write_text(json.dumps(passwords))
        path.chmod(0o600)
        return cls(passwords)

    @staticmethod
    def username(principal: str) -> str:
        return f"purchase-{principal}" if principal != "admin" else "admin"

    def client_env(self, principal: str) -> dict[str, str]:
        """The services' settings (KAFKA_SECURITY_PROTOCOL, ...) to connect as `principal`."""
        return {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": MECHANISM,
                "KAFKA_SASL_USERNAME": self.username(principal), "KAFKA_SASL_PASSWORD": self.passwords[principal]}

    def config(self, bootstrap: str, principal: str = "admin", **names: str) -> KafkaConfig:
        """A KafkaConfig that connects as `principal` (topic and group names: KafkaConfig's own, or `names`)."""
        return KafkaConfig.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, **names, **self.client_env(principal)})

    # -- the broker's side ------------------------------------------------------------------------------------

    def broker_properties(self, listener: str) -> list[str]:
        """server.properties lines for a broker whose client listener, named `listener`, is SASL_PLAINTEXT."""
        name = listener.lower()
        admin = self.passwords["admin"]
        return [
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.{name}.{MECHANISM.lower()}.sasl.jaas.config="
            f'org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="{admin}";',
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=false",
            "super.users=User:admin;User:ANONYMOUS",
        ]

    def format_arguments(self) -> list[str]:
        """The storage tool's arguments that give the admin its SCRAM credential before the first start (KIP-900):
        the broker's own connections authenticate as it."""
        return ["--add-scram", f"{MECHANISM}=[name=admin,password={self.passwords['admin']}]"]

    def provision(self, bootstrap: str, topic: str, dead_letter_topic: str, group: str) -> None:
        """The principals' SCRAM credentials, and their ACLs on these names (idempotent: run at every start)."""
        admin = KafkaAdminClient(**self.config(bootstrap).client_options(), client_id="provisioning")
        try:
            errors = admin.alter_user_scram_credentials([
                UserScramCredentialUpsertion(self.username(p), ScramMechanism.SCRAM_SHA_512, self.passwords[p])
                for p in PRINCIPALS if p != "admin"])
            failed = {user: error for user, error in errors.items() if error}
            if failed:
                raise RuntimeError(f"SCRAM credentials refused: {failed}")
            admin.create_acls(self.acls(topic, dead_letter_topic, group))
        finally:
            admin.close()

    def acls(self, topic: str, dead_letter_topic: str, group: str) -> list[ACL]:
        def allow(principal: str, operation: ACLOperation, kind: ResourceType, name: str) -> ACL:
            return ACL(f"User:{self.username(principal)}", "*", operation, ACLPermissionType.ALLOW,
                       ResourcePattern(kind, name))
        TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER  # noqa: N806
        ops = ACLOperation
        return [
            allow("web", ops.WRITE, TOPIC, topic), allow("web", ops.DESCRIBE, TOPIC, topic),
            allow("web", ops.DESCRIBE, GROUP, group),
            allow("api", ops.READ, TOPIC, topic), allow("api", ops.DESCRIBE, TOPIC, topic),
            allow("api", ops.READ, GROUP, group),
            allow("api", ops.WRITE, TOPIC, dead_letter_topic), allow("api", ops.DESCRIBE, TOPIC, dead_letter_topic),
            allow("topics", ops.CREATE, TOPIC, topic), allow("topics", ops.CREATE, TOPIC, dead_letter_topic),
            allow("topics", ops.DESCRIBE, TOPIC, topic), allow("topics", ops.DESCRIBE, TOPIC, dead_letter_topic),
            allow("topics", ops.DESCRIBE, CLUSTER, "kafka-cluster"),
            allow("keda", ops.DESCRIBE, TOPIC, topic), allow("keda", ops.DESCRIBE, GROUP, group),
        ]

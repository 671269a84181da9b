"""Configuration, read once from the environment into typed, immutable objects.

Every variable is documented in the README; the defaults work against `make dev`'s local stack.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    pass


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "false").strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "purchases"
    dead_letter_topic: str = "purchases.dlq"
    consumer_group: str = "purchase-group"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaConfig:
        topic = env.get("KAFKA_TOPIC") or cls.topic
        protocol = (env.get("KAFKA_SECURITY_PROTOCOL") or cls.security_protocol).upper()
        if protocol not in ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"):
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL {protocol!r} is not one Kafka knows")
        config = cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or cls.bootstrap_servers,
            topic=topic,
            dead_letter_topic=env.get("KAFKA_DLQ_TOPIC") or f"{topic}.dlq",
            consumer_group=env.get("KAFKA_CONSUMER_GROUP") or cls.consumer_group,
            security_protocol=protocol,
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM") or None,
            sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
        )
        credentials = config.sasl_mechanism and config.sasl_username and config.sasl_password
        if protocol.startswith("SASL") and not credentials:
            raise ConfigError("SASL needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        return config

    def client_options(self) -> dict[str, Any]:
        """The connection options kafka-python's producer, consumer and admin client share."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
            "reconnect_backoff_max_ms": 1000,
        }
        if self.security_protocol.startswith("SASL"):
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return options


@dataclass(frozen=True)
class HttpConfig:
    host: str
    port: int
    log_level: str
    max_connections: int = 4000
    # /metrics is served on a port of its own, so a monitoring system may reach it without reaching any route
    # that serves a customer's data (the chart's NetworkPolicy admits it to this port alone).
    metrics_port: int = 9080

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_port: int, default_metrics_port: int) -> HttpConfig:
        config = cls(
            host=env.get("HOST") or "0.0.0.0",
            port=_int(env, "PORT", default_port),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            max_connections=_int(env, "MAX_CONNECTIONS", cls.max_connections),
            metrics_port=_int(env, "METRICS_PORT", default_metrics_port),
        )
        if config.metrics_port == config.port:
            raise ConfigError(f"METRICS_PORT must differ from PORT ({config.port}): metrics have a port of their own")
        return config


@dataclass(frozen=True)
class AuthConfig:
    """Who may buy and read: off (anyone, the original system's behaviour) or OpenID Connect bearer tokens."""

    mode: str = "off"
    issuer: str = ""
    audience: str = ""
    customer_claim: str = "sub"
    client_id: str = ""  # the customer page's public client for sign-in; empty: the page cannot sign in
    leeway_s: int = 30  # clock skew allowed on exp, nbf and iat
    jwks_refresh_s: int = 10  # an unknown key id fetches the provider's keys at most once per this interval
    # The key set is fetched again this often, and a verified token is trusted this long past its last check against
    # a fresh key set: a key the provider withdraws stops working within it.
    jwks_max_age_s: int = 300
    authorized_parties: tuple[str, ...] = ()  # if named: a token's azp must be one of them
    allow_insecure_issuer: bool = False  # an http:// issuer that is not loopback (its keys fetched in plaintext)

    @property
    def enabled(self) -> bool:
        return self.mode == "oidc"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthConfig:
        mode = (env.get("AUTH_MODE") or cls.mode).lower()
        if mode not in ("off", "oidc"):
            raise ConfigError(f"AUTH_MODE must be 'off' or 'oidc', got {mode!r}")
        config = cls(
            mode=mode,
            issuer=env.get("OIDC_ISSUER") or "",  # exactly as given: a token's iss must be it, trailing / and all
            audience=env.get("OIDC_AUDIENCE") or "",
            customer_claim=env.get("OIDC_CUSTOMER_CLAIM") or cls.customer_claim,
            client_id=env.get("OIDC_CLIENT_ID") or "",
            leeway_s=_int(env, "OIDC_LEEWAY_S", cls.leeway_s, minimum=0),
            jwks_refresh_s=_int(env, "OIDC_JWKS_REFRESH_S", cls.jwks_refresh_s),
            jwks_max_age_s=_int(env, "OIDC_JWKS_MAX_AGE_S", cls.jwks_max_age_s),
            authorized_parties=tuple(p.strip() for p in (env.get("OIDC_AUTHORIZED_PARTIES") or "").split(",")
                                     if p.strip()),
            allow_insecure_issuer=_bool(env, "OIDC_ALLOW_INSECURE_ISSUER"),
        )
        if config.enabled:
            scheme, _, rest = config.issuer.partition("://")
            host = urlsplit(config.issuer).hostname or ""
            if scheme not in ("https", "http") or not rest:
                raise ConfigError("AUTH_MODE=oidc needs OIDC_ISSUER, the provider's https:// issuer URL")
            if scheme == "http" and not (_loopback(host) or config.allow_insecure_issuer):
                raise ConfigError(f"OIDC_ISSUER {config.issuer!r} is plain http: web would fetch the keys that decide "
                                  "who may buy without TLS, where anyone on the path can replace them. Use https, "
                                  "or set OIDC_ALLOW_INSECURE_ISSUER=true for a provider on a network you trust")
            if not config.audience:
                raise ConfigError("AUTH_MODE=oidc needs OIDC_AUDIENCE, the audience web's tokens are issued for")
            if config.jwks_max_age_s < config.jwks_refresh_s:
                raise ConfigError("OIDC_JWKS_MAX_AGE_S must be at least OIDC_JWKS_REFRESH_S")
        return config


@dataclass(frozen=True)
class WebConfig:
    http: HttpConfig
    kafka: KafkaConfig
    auth: AuthConfig = AuthConfig()
    api_url: str = "http://127.0.0.1:8081"
    publish_timeout_ms: int = 4000
    linger_ms: int = 2
    linger_crowd: int = 4
    max_awaiting_ack: int = 5000
    wedged_after_s: int = 60
    lag_export_interval_s: int = 5  # how often web reads the api's consumer group lag for /metrics; 0: never
    workers: int = 1  # processes on the port (services/common/workers.py), each with its own producer

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        return cls(
            http=HttpConfig.from_env(env, default_port=8080, default_metrics_port=9080),
            kafka=KafkaConfig.from_env(env),
            auth=AuthConfig.from_env(env),
            api_url=(env.get("API_URL") or cls.api_url).rstrip("/"),
            publish_timeout_ms=_int(env, "PUBLISH_TIMEOUT_MS", cls.publish_timeout_ms, minimum=500),
            linger_ms=_int(env, "KAFKA_LINGER_MS", cls.linger_ms, minimum=0),
            linger_crowd=_int(env, "KAFKA_LINGER_CROWD", cls.linger_crowd, minimum=0),
            max_awaiting_ack=_int(env, "MAX_AWAITING_ACK", cls.max_awaiting_ack),
            wedged_after_s=_int(env, "LIVENESS_WEDGED_AFTER_S", cls.wedged_after_s),
            lag_export_interval_s=_int(env, "LAG_EXPORT_INTERVAL_S", cls.lag_export_interval_s, minimum=0),
            workers=_int(env, "WEB_WORKERS", cls.workers),
        )


@dataclass(frozen=True)
class ApiConfig:
    http: HttpConfig
    kafka: KafkaConfig
    mongodb_uri: str = field(default="mongodb://127.0.0.1:27017/", repr=False)
    mongodb_database: str = "purchases"
    batch_size: int = 1000
    # A member silent this long is evicted from the group and its partitions go to others (Kafka's default).
    session_timeout_ms: int = 45_000
    # What MongoDB must have done before an insert counts as stored (and its offsets are committed): written to a
    # majority of the replica set ("majority") or to N members, always journaled. See the README: a weaker one can
    # lose a purchase whose offset was already committed, if the primary fails over before replicating it.
    write_concern: str = "majority"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiConfig:
        env = os.environ if env is None else env
        return cls(
            http=HttpConfig.from_env(env, default_port=8081, default_metrics_port=9081),
            kafka=KafkaConfig.from_env(env),
            mongodb_uri=env.get("MONGODB_URI") or cls.mongodb_uri,
            mongodb_database=env.get("MONGODB_DATABASE") or cls.mongodb_database,
            batch_size=_int(env, "CONSUMER_BATCH_SIZE", cls.batch_size),
            session_timeout_ms=_int(env, "CONSUMER_SESSION_TIMEOUT_MS", cls.session_timeout_ms, minimum=6000),
            write_concern=_write_concern(env.get("MONGODB_WRITE_CONCERN") or cls.write_concern),
        )

    @property
    def write_concern_w(self) -> str | int:
        """The write concern's `w`: "majority", or a number of members."""
        return self.write_concern if self.write_concern == "majority" else int(self.write_concern)


@dataclass(frozen=True)
class TopicsConfig:
    """The topics Job's (python -m services.api.topics): the purchases topic's partitions (the most api pods that
    can share the work), its replication factor, and how long to wait for Kafka before giving up."""

    kafka: KafkaConfig
    partitions: int = 8
    replication_factor: int = 1
    wait_s: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TopicsConfig:
        env = os.environ if env is None else env
        return cls(
            kafka=KafkaConfig.from_env(env),
            partitions=_int(env, "TOPIC_PARTITIONS", cls.partitions),
            replication_factor=_int(env, "TOPIC_REPLICATION_FACTOR", cls.replication_factor),
            wait_s=_int(env, "TOPIC_WAIT_S", cls.wait_s),
        )


def _write_concern(raw: str) -> str:
    value = raw.strip().lower()
    if value == "majority" or (value.isdigit() and int(value) >= 1):
        return value
    raise ConfigError(f"MONGODB_WRITE_CONCERN must be 'majority' or a number of members (1 or more), got {raw!r}: "
                      "an unacknowledged write (0) could lose a purchase whose offset is committed")

"""Configuration, read once from the environment into typed, immutable objects.

Every variable is documented in the README; the defaults work against `make dev`'s local stack.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    pass


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

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_port: int) -> HttpConfig:
        return cls(
            host=env.get("HOST") or "0.0.0.0",
            port=_int(env, "PORT", default_port),
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            max_connections=_int(env, "MAX_CONNECTIONS", cls.max_connections),
        )


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
            issuer=(env.get("OIDC_ISSUER") or "").rstrip("/"),
            audience=env.get("OIDC_AUDIENCE") or "",
            customer_claim=env.get("OIDC_CUSTOMER_CLAIM") or cls.customer_claim,
            client_id=env.get("OIDC_CLIENT_ID") or "",
            leeway_s=_int(env, "OIDC_LEEWAY_S", cls.leeway_s, minimum=0),
            jwks_refresh_s=_int(env, "OIDC_JWKS_REFRESH_S", cls.jwks_refresh_s),
        )
        if config.enabled:
            if not config.issuer.startswith(("https://", "http://")):
                raise ConfigError("AUTH_MODE=oidc needs OIDC_ISSUER, the provider's https:// issuer URL")
            if not config.audience:
                raise ConfigError("AUTH_MODE=oidc needs OIDC_AUDIENCE, the audience web's tokens are issued for")
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        return cls(
            http=HttpConfig.from_env(env, default_port=8080),
            kafka=KafkaConfig.from_env(env),
            auth=AuthConfig.from_env(env),
            api_url=(env.get("API_URL") or cls.api_url).rstrip("/"),
            publish_timeout_ms=_int(env, "PUBLISH_TIMEOUT_MS", cls.publish_timeout_ms, minimum=500),
            linger_ms=_int(env, "KAFKA_LINGER_MS", cls.linger_ms, minimum=0),
            linger_crowd=_int(env, "KAFKA_LINGER_CROWD", cls.linger_crowd, minimum=0),
            max_awaiting_ack=_int(env, "MAX_AWAITING_ACK", cls.max_awaiting_ack),
            wedged_after_s=_int(env, "LIVENESS_WEDGED_AFTER_S", cls.wedged_after_s),
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiConfig:
        env = os.environ if env is None else env
        return cls(
            http=HttpConfig.from_env(env, default_port=8081),
            kafka=KafkaConfig.from_env(env),
            mongodb_uri=env.get("MONGODB_URI") or cls.mongodb_uri,
            mongodb_database=env.get("MONGODB_DATABASE") or cls.mongodb_database,
            batch_size=_int(env, "CONSUMER_BATCH_SIZE", cls.batch_size),
            session_timeout_ms=_int(env, "CONSUMER_SESSION_TIMEOUT_MS", cls.session_timeout_ms, minimum=6000),
        )

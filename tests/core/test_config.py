import pytest

from services.core.config import ApiConfig, AuthConfig, ConfigError, KafkaConfig, TopicsConfig, WebConfig

pytestmark = pytest.mark.unit  # make check: no server, no build


def test_defaults_point_at_the_local_stack():
    web, api = WebConfig.from_env({}), ApiConfig.from_env({})
    assert web.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert (web.kafka.topic, web.kafka.dead_letter_topic, web.kafka.consumer_group) == (
        "purchases", "purchases.dlq", "purchase-group")
    assert (web.http.port, api.http.port) == (8080, 8081)
    assert api.mongodb_uri == "mongodb://127.0.0.1:27017/"
    assert web.api_url == "http://127.0.0.1:8081"


def test_environment_overrides_and_the_dead_letter_topic_follows_the_topic():
    config = ApiConfig.from_env({"KAFKA_TOPIC": "t", "PORT": "9000", "MONGODB_DATABASE": "d", "LOG_LEVEL": "debug"})
    assert (config.kafka.topic, config.kafka.dead_letter_topic) == ("t", "t.dlq")
    assert (config.http.port, config.mongodb_database, config.http.log_level) == (9000, "d", "DEBUG")


def test_bad_numbers_are_refused_with_the_variable_named():
    with pytest.raises(ConfigError, match="PORT"):
        WebConfig.from_env({"PORT": "eighty"})
    with pytest.raises(ConfigError, match="CONSUMER_BATCH_SIZE"):
        ApiConfig.from_env({"CONSUMER_BATCH_SIZE": "0"})


def test_the_topics_job_reads_its_numbers_strictly_and_defaults_to_eight_partitions():
    config = TopicsConfig.from_env({"KAFKA_TOPIC": "t"})
    assert (config.kafka.topic, config.partitions, config.replication_factor, config.wait_s) == ("t", 8, 1, 300)
    assert TopicsConfig.from_env({"TOPIC_PARTITIONS": "12", "TOPIC_WAIT_S": "60"}).partitions == 12
    for name, raw in (("TOPIC_PARTITIONS", "8.5"), ("TOPIC_PARTITIONS", "0"), ("TOPIC_REPLICATION_FACTOR", "three"),
                      ("TOPIC_WAIT_S", "-1")):
        with pytest.raises(ConfigError, match=name):
            TopicsConfig.from_env({name: raw})


def test_sasl_needs_its_credentials_and_passes_them_to_kafka_python():
    with pytest.raises(ConfigError, match="SASL"):
        KafkaConfig.from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    config = KafkaConfig.from_env({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": "PLAIN",
                                   "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "s3cret"})
    options = config.client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "s3cret")
    assert "s3cret" not in repr(config)


def test_an_http_issuer_is_refused_unless_it_is_loopback_or_explicitly_allowed():
    base = {"AUTH_MODE": "oidc", "OIDC_AUDIENCE": "web"}
    for loopback in ("http://127.0.0.1:8180/realms/shop", "http://localhost/realms/shop", "http://[::1]:80/r"):
        assert AuthConfig.from_env({**base, "OIDC_ISSUER": loopback}).issuer == loopback
    with pytest.raises(ConfigError, match="plain http"):
        AuthConfig.from_env({**base, "OIDC_ISSUER": "http://id.example.com/realms/shop"})
    allowed = AuthConfig.from_env({**base, "OIDC_ISSUER": "http://keycloak.auth:8080/realms/shop",
                                   "OIDC_ALLOW_INSECURE_ISSUER": "true"})
    assert allowed.allow_insecure_issuer
    with pytest.raises(ConfigError, match="true or false"):
        AuthConfig.from_env({**base, "OIDC_ISSUER": "https://id.example", "OIDC_ALLOW_INSECURE_ISSUER": "maybe"})


def test_the_issuer_is_kept_as_given_and_authorized_parties_are_a_list():
    config = AuthConfig.from_env({"AUTH_MODE": "oidc", "OIDC_AUDIENCE": "web", "OIDC_ISSUER": "https://id.example/",
                                  "OIDC_AUTHORIZED_PARTIES": "shop-web, shop-app,"})
    assert config.issuer == "https://id.example/"  # a provider whose iss ends in / is matched exactly
    assert config.authorized_parties == ("shop-web", "shop-app")


def test_the_write_concern_is_majority_and_journaled_unless_a_number_of_members_is_named():
    assert ApiConfig.from_env({}).write_concern_w == "majority"
    assert ApiConfig.from_env({"MONGODB_WRITE_CONCERN": "2"}).write_concern_w == 2
    for bad in ("0", "some", "-1"):
        with pytest.raises(ConfigError, match="MONGODB_WRITE_CONCERN"):
            ApiConfig.from_env({"MONGODB_WRITE_CONCERN": bad})

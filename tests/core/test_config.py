import pytest

from services.core.config import ApiConfig, ConfigError, KafkaConfig, WebConfig


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


def test_sasl_needs_its_credentials_and_passes_them_to_kafka_python():
    with pytest.raises(ConfigError, match="SASL"):
        KafkaConfig.from_env({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"})
    config = KafkaConfig.from_env({"KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": "PLAIN",
                                   "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "s3cret"})
    options = config.client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "s3cret")
    assert "s3cret" not in repr(config)

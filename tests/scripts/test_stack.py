"""The local stack's Kafka: formatting and starting it, whatever random cluster id it drew."""

import pytest
from kafka.admin import KafkaAdminClient

from scripts.stack.kafka import KafkaServer, new_cluster_id
from scripts.stack.process import free_port


def test_new_cluster_ids_are_22_url_safe_characters_and_some_start_with_a_dash():
    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
               for i in ids)
    assert any(i.startswith("-") for i in ids), "1 in 64 should start with '-' (the case the storage tool misread)"


@pytest.mark.parametrize("cluster_id", ["-dashFirstClusterId0Aw", "--doubleDashClusterIdAw"])
def test_kafka_formats_and_starts_with_a_cluster_id_that_starts_with_a_dash(tmp_path, cluster_id):
    with KafkaServer(tmp_path / "kafka", port=free_port(), heap="256m", cluster_id=cluster_id) as server:
        meta = (tmp_path / "kafka" / "logs" / "meta.properties").read_text()
        assert f"cluster.id={cluster_id}\n" in meta
        admin = KafkaAdminClient(bootstrap_servers=server.address)
        try:
            assert admin.describe_cluster()["cluster_id"] == cluster_id
        finally:
            admin.close()
    assert server.exit_code() is not None, "the with block did not stop Kafka"

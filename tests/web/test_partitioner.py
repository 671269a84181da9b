"""The cached partitioner picks exactly the partition kafka-python's default (and Kafka's Java client) picks."""

import pytest
from kafka.partitioner import DefaultPartitioner

from services.web.partitioner import CachedKeyPartitioner

pytestmark = pytest.mark.unit  # make check: no server, no build


class Cluster:
    """The two questions a partitioner asks of kafka-python's ClusterMetadata."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self._partitions = partitions

    def topics(self) -> set[str]:
        return set(self._partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)


KEYS = [f"user-{i}".encode() for i in range(3000)] + [b"", b"555", "ünïcødé".encode(), b"\xff" * 41]


@pytest.mark.parametrize("count", [1, 3, 8, 12])
def test_every_key_lands_where_the_default_partitioner_puts_it(count):
    cluster, default, cached = Cluster({"purchases": set(range(count))}), DefaultPartitioner(), CachedKeyPartitioner()
    for _ in range(2):  # the second round is answered from the cache
        assert [cached.partition("purchases", None, k, None, None, cluster) for k in KEYS] == \
               [default.partition("purchases", None, k, None, None, cluster) for k in KEYS]


def test_the_partition_follows_a_topic_that_grew():
    cached = CachedKeyPartitioner()
    before = [cached.partition("purchases", None, k, None, None, Cluster({"purchases": set(range(8))})) for k in KEYS]
    after = [cached.partition("purchases", None, k, None, None, Cluster({"purchases": set(range(16))})) for k in KEYS]
    assert max(before) == 7 and max(after) == 15


def test_an_unknown_topic_is_refused_as_the_default_refuses_it():
    with pytest.raises(ValueError):
        CachedKeyPartitioner().partition("nope", None, b"555", None, None, Cluster({"purchases": {0}}))


def test_a_record_without_key_goes_to_one_of_the_topics_partitions():
    cluster = Cluster({"purchases": set(range(8))})
    chosen = {CachedKeyPartitioner().partition("purchases", None, None, None, None, cluster) for _ in range(200)}
    assert chosen <= set(range(8))

"""The partition for a purchase: kafka-python's default choice (murmur2 of the key, the same partition Kafka's
Java client picks, so one user's purchases stay in order on one partition), with its pure-Python hash computed
once per user instead of once per record."""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner import DefaultPartitioner, Partitioner, murmur2


@lru_cache(maxsize=100_000)
def key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


class CachedKeyPartitioner(Partitioner):
    def __init__(self) -> None:
        self._default = DefaultPartitioner()

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return self._default.partition(topic, key, serialized_key, value, serialized_value, cluster)
        ordered = sorted(partitions)
        return ordered[key_hash(serialized_key) % len(ordered)]

"""A consumer group's lag, measured from outside the group: its committed offsets against each partition's end.

This is what KEDA scales on, and what an operator needs most when the consumer is in trouble: the api's own view
of its lag is updated only between batches, so it stands still exactly while the consumer cannot store (a
frozen database, a stuck or dead api). Asked of Kafka directly, the lag keeps growing with every purchase web
accepts. `partition_lag` is the arithmetic (no I/O); `LagReader` asks Kafka with one admin client (blocking:
call it from a thread). web exports it (services/web/lag_exporter.py); `make lag` prints it (scripts/lag.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from services.core.config import KafkaConfig


@dataclass(frozen=True)
class Lag:
    partitions: dict[int, int]  # partition -> records not yet committed by the group

    @property
    def total(self) -> int:
        return sum(self.partitions.values())


def partition_lag(ends: dict[int, int], committed: dict[int, int], starts: dict[int, int]) -> Lag:
    """Per partition, the records after the group's committed offset. A partition the group has never committed
    counts from its log start, as the api (auto_offset_reset=earliest) and the chart's KEDA trigger
    (offsetResetPolicy: earliest) count it."""
    lag = {}
    for partition, end in sorted(ends.items()):
        offset = committed.get(partition, -1)
        start = offset if offset >= 0 else starts.get(partition, 0)
        lag[partition] = max(end - start, 0)
    return Lag(lag)


class LagReader:
    """One admin client, kept open for repeated reads of one group's lag on one topic."""

    def __init__(self, kafka: KafkaConfig, group: str | None = None, topic: str | None = None,
                 timeout_ms: int = 5000) -> None:
        self.group, self.topic = group or kafka.consumer_group, topic or kafka.topic
        self._timeout_ms = timeout_ms
        self._admin = KafkaAdminClient(**kafka.client_options(), client_id="lag-reader",
                                       request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)

    @classmethod
    def at(cls, bootstrap: str, group: str, topic: str) -> LagReader:
        """A reader for the plaintext Kafka at `bootstrap` (the local stack's)."""
        return cls(KafkaConfig(bootstrap_servers=bootstrap), group, topic)

    def partitions(self) -> list[TopicPartition]:
        [topic] = self._admin.describe_topics([self.topic])
        return sorted(TopicPartition(self.topic, p["partition_index"]) for p in topic.get("partitions") or [])

    def read(self) -> Lag:
        partitions = self.partitions()
        ends = self._offsets(partitions, OffsetSpec.LATEST)
        committed = self._committed()
        never = [tp for tp in partitions if committed.get(tp.partition, -1) < 0]
        starts = self._offsets(never, OffsetSpec.EARLIEST) if never else {}
        return partition_lag(ends, committed, starts)

    def _offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[int, int]:
        answer = self._admin.list_partition_offsets({tp: spec for tp in partitions}, timeout_ms=self._timeout_ms)
        return {tp.partition: found.offset for tp, found in answer.items()}

    def _committed(self, attempts: int = 10) -> dict[int, int]:
        for attempt in range(attempts):
            try:
                offsets: dict[TopicPartition, OffsetAndMetadata] = self._admin.list_group_offsets(self.group).get(
                    self.group, {})
                return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}
            except KafkaError as exc:
                # On a fresh broker the offsets topic (the group's coordinator) is made on first use.
                if not exc.retriable or attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        return {}

    def close(self) -> None:
        self._admin.close()

"""Consumer-group lag from Kafka itself: committed offset vs end offset, per partition. KEDA scales on this.

    python -m scripts.lag [--bootstrap 127.0.0.1:9092] [--group purchase-group] [--topic purchases] [--watch]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError


@dataclass(frozen=True)
class Lag:
    partitions: dict[int, int]  # partition -> records not yet committed by the group

    @property
    def total(self) -> int:
        return sum(self.partitions.values())


class LagReader:
    """Keeps one admin client and one (group-less) consumer open, for sampling lag repeatedly."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        self._partitions = [TopicPartition(topic, p) for p in sorted(self._consumer.partitions_for_topic(topic) or ())]

    def read(self) -> Lag:
        ends = self._consumer.end_offsets(self._partitions)
        committed = self._committed()
        lag = {}
        for tp in self._partitions:
            meta = committed.get(tp)
            # No commit yet: the group will start at the earliest offset (auto_offset_reset="earliest").
            start = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.partition] = max(ends[tp] - start, 0)
        return Lag(lag)

    def _committed(self, attempts: int = 20) -> dict:
        for attempt in range(attempts):
            try:
                return self._admin.list_group_offsets(self.group).get(self.group, {})
            except KafkaError as exc:
                # On a fresh broker the offsets topic (the group coordinator) is created on first use.
                if not exc.retriable or attempt == attempts - 1:
                    raise
                time.sleep(0.5)
        return {}

    def close(self) -> None:
        self._admin.close()
        self._consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--group", default="purchase-group")
    parser.add_argument("--topic", default="purchases")
    parser.add_argument("--watch", action="store_true", help="print a line every second until Ctrl-C")
    args = parser.parse_args()
    reader = LagReader(args.bootstrap, args.group, args.topic)
    try:
        while True:
            lag = reader.read()
            per_partition = " ".join(f"p{p}={n}" for p, n in lag.partitions.items())
            print(f"{time.strftime('%H:%M:%S')} total={lag.total} {per_partition}", flush=True)
            if not args.watch:
                break
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()


if __name__ == "__main__":
    main()

"""A live answer to "can Kafka take a purchase now?": the topic's metadata, asked for every second.

Readiness must not mean "the last publish succeeded" (after an outage, a pod that gets no traffic could then
never become ready again), and it must not cost a produce. A metadata request for the topic is cheap, needs a
broker that answers, and says whether each partition has a leader to write to. It runs on a thread of its own
with its own admin client, so a slow or frozen broker never blocks the event loop or the producer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaTimeoutError
from prometheus_client import Gauge

from services.core.config import KafkaConfig

log = logging.getLogger(__name__)

CAN_TAKE = Gauge("kafka_can_take_purchases", "1 while Kafka answers with a leader for every partition of the topic "
                 "(web's probe, every second), else 0", multiprocess_mode="livemin")  # with workers: all can


@dataclass(frozen=True)
class KafkaState:
    reachable: bool
    partitions_without_leader: tuple[int, ...] = ()
    error: str | None = None

    @property
    def can_take_purchases(self) -> bool:
        return self.reachable and not self.partitions_without_leader

    def to_json(self) -> dict:
        body: dict = {"reachable": self.reachable}
        if self.partitions_without_leader:
            body["partitions_without_leader"] = list(self.partitions_without_leader)
        if self.error:
            body["error"] = self.error
        return body


def topic_state(metadata_topics: list[dict], topic: str) -> KafkaState:
    """The state of `topic` in a metadata answer (kafka-python's describe_topics)."""
    for entry in metadata_topics:
        if entry.get("name") == topic:
            if entry.get("error_code"):
                return KafkaState(False, error=f"topic {topic!r}: error code {entry['error_code']}")
            partitions = entry.get("partitions") or []
            if not partitions:
                return KafkaState(False, error=f"topic {topic!r} has no partitions")
            leaderless = tuple(sorted(p["partition_index"] for p in partitions if p.get("leader_id", -1) < 0))
            return KafkaState(True, leaderless)
    return KafkaState(False, error=f"topic {topic!r} not in the metadata")


class KafkaProbe:
    def __init__(self, kafka: KafkaConfig, interval_s: float = 1.0, timeout_ms: int = 1500) -> None:
        self._kafka = kafka
        self._interval_s = interval_s
        self._timeout_ms = timeout_ms
        self._admin: KafkaAdminClient | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kafka-probe")
        self._check: asyncio.Future | None = None
        # Until the first answer: reachable (the producer was only made after Kafka answered).
        self.state = KafkaState(True)

    async def run(self) -> None:
        """Check every `interval_s`, until cancelled. A check that hangs marks Kafka unreachable meanwhile."""
        loop = asyncio.get_running_loop()
        while True:
            if self._check is None or self._check.done():
                self._check = loop.run_in_executor(self._thread, self._describe)
            try:
                self.state = await asyncio.wait_for(asyncio.shield(self._check), self._timeout_ms / 1000 + 0.5)
            except TimeoutError:
                self.state = KafkaState(False, error="no metadata answer in time")
            CAN_TAKE.set(1 if self.state.can_take_purchases else 0)
            await asyncio.sleep(self._interval_s)

    def _describe(self) -> KafkaState:
        state = self._describe_once()
        if self._admin is None and not state.reachable:
            # The broker this client used is gone (a broken connection, not a timeout): in a cluster another
            # one answers, so ask again at once with a new client before saying Kafka cannot take purchases.
            # Without this, every buy was refused for a second or two when one broker of three died.
            state = self._describe_once()
        return state

    def _describe_once(self) -> KafkaState:
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(**self._kafka.client_options(), client_id="web-readiness",
                                               request_timeout_ms=self._timeout_ms,
                                               bootstrap_timeout_ms=self._timeout_ms)
            return topic_state(self._admin.describe_topics([self._kafka.topic]), self._kafka.topic)
        except Exception as exc:  # any failure of the probe is "not reachable", never a crash of web
            if self._admin is not None and not isinstance(exc, KafkaTimeoutError):
                admin, self._admin = self._admin, None
                try:
                    admin.close()
                except Exception:
                    pass
            return KafkaState(False, error=f"{type(exc).__name__}: {exc}"[:200])

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:
                pass

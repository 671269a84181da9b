"""Publishes purchases to Kafka and reports, to asyncio, when the broker has acknowledged them.

kafka-python has no asyncio API: its producer sends from its own I/O thread and completes a future
there. The outcomes are handed back to the event loop through a queue and `call_soon_threadsafe`, so a
request awaits its acknowledgement without ever blocking the loop. One acknowledged batch completes many
futures at once: they share one wake-up of the loop instead of one each.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading

from kafka import KafkaProducer
from kafka.errors import KafkaError

from services.common.http import ServiceUnavailable
from services.core.config import WebConfig
from services.core.purchase import Purchase, encode_event

from .partitioner import CachedKeyPartitioner

log = logging.getLogger(__name__)

CONNECT_RETRY_S = 2.0


class Publisher:
    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._producer: KafkaProducer | None = None
        self._connecting: asyncio.Task | None = None
        self._last_ok = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settled: collections.deque = collections.deque()  # (future, outcome), from the producer's thread
        self._wakeup_lock = threading.Lock()
        self._wakeup_pending = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background: web serves (and answers 503 to buys) until Kafka is reachable."""
        self._loop = asyncio.get_running_loop()
        self._connecting = asyncio.create_task(self._connect_until_ready())

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._producer is not None:
            # flush() waits for every record in flight; the handlers awaiting them complete first.
            await asyncio.get_running_loop().run_in_executor(None, self._producer.close, 10)
            self._producer = None

    async def _connect_until_ready(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self._producer = await loop.run_in_executor(None, self._new_producer)
                log.info("kafka producer connected", extra={"topic": self._config.kafka.topic})
                return
            except KafkaError as exc:
                log.warning("kafka unreachable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(CONNECT_RETRY_S)

    def _new_producer(self) -> KafkaProducer:
        timeout = self._config.publish_timeout_ms
        producer = KafkaProducer(
            **self._config.kafka.client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=self._config.linger_ms,
            # A purchase is either acknowledged or failed within the publish timeout, so a client
            # waits at most that long, and a record we reported as failed is not sent later.
            delivery_timeout_ms=timeout,
            request_timeout_ms=max(timeout - self._config.linger_ms - 100, 100),
            max_block_ms=min(timeout, 1000),
            bootstrap_timeout_ms=timeout,
            retry_backoff_ms=100,
            metrics_enabled=False,  # kafka-python's own sensors, recorded per record, are never read here
            partitioner=CachedKeyPartitioner(),  # the default choice; its pure-Python hash once per user
        )
        # Fetch the topic's metadata now: send() would otherwise block while it fetches it.
        if not producer.partitions_for(self._config.kafka.topic):
            producer.close(0)
            raise KafkaError(f"topic {self._config.kafka.topic!r} does not exist")
        return producer

    # -- state ------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Connected, and the last publish (if any) was acknowledged."""
        return self._producer is not None and self._last_ok

    # -- publishing -------------------------------------------------------------------------------

    async def publish(self, purchase: Purchase) -> None:
        """Return once the broker has acknowledged the purchase (acks=all); else raise ServiceUnavailable."""
        producer = self._producer
        if producer is None:
            raise ServiceUnavailable("Kafka is not reachable yet; try again shortly", retry_after=2)
        acked: asyncio.Future = self._loop.create_future()
        try:
            record = producer.send(
                self._config.kafka.topic,
                key=purchase.user_id.encode("utf-8"),
                value=encode_event(purchase),
            )
        except KafkaError as exc:
            self._last_ok = False
            raise ServiceUnavailable(f"Kafka did not take the purchase: {type(exc).__name__}") from exc
        record.add_both(self._settle_threadsafe, acked)
        # The producer's delivery timeout bounds this already; the margin only guards against a bug.
        timeout = self._config.publish_timeout_ms / 1000 + 1
        try:
            async with asyncio.timeout(timeout):
                outcome = await acked
        except TimeoutError:
            outcome = KafkaError("no acknowledgement in time")
        if isinstance(outcome, Exception):
            self._last_ok = False
            log.warning("publish failed", extra={"purchase_id": purchase.id, "error": repr(outcome)})
            raise ServiceUnavailable(f"Kafka did not acknowledge the purchase: {type(outcome).__name__}")
        self._last_ok = True

    def _settle_threadsafe(self, future: asyncio.Future, outcome: object) -> None:
        """Called on the producer's thread (or at once, on ours): queue the outcome, wake the loop once."""
        self._settled.append((future, outcome))
        with self._wakeup_lock:
            if self._wakeup_pending:
                return
            self._wakeup_pending = True
        self._loop.call_soon_threadsafe(self._settle_queued)

    def _settle_queued(self) -> None:
        with self._wakeup_lock:
            self._wakeup_pending = False
        while self._settled:
            future, outcome = self._settled.popleft()
            if not future.done():
                future.set_result(outcome)

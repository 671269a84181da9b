"""Publishes purchases to Kafka and reports, to asyncio, when the broker has acknowledged them.

kafka-python has no asyncio API: its producer sends from its own I/O thread and completes a future
there. The outcomes are handed back to the event loop through a queue and `call_soon_threadsafe`, so a
request awaits its acknowledgement without ever blocking the loop. One acknowledged batch completes many
futures at once: they share one wake-up of the loop instead of one each.

It heals itself. kafka-python's idempotent producer can stay wedged after its batches expire during a broker
crash (it answers every later send with a timeout, for good), so a producer that fails a delivery is replaced
by a new one as soon as Kafka answers again; the old one is closed in the background once its own records
have been acknowledged or have expired, so every request waiting on it still gets its answer. A purchase is
answered within the publish timeout, whatever happens: 202 once acknowledged, else 503 (outcome unknown).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import threading
import time

from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from services.common.http import ServiceUnavailable
from services.core.config import WebConfig
from services.core.purchase import Purchase, encode_event

from .delivery import DeliveryHealth
from .kafka_probe import KafkaProbe, KafkaState
from .linger import Linger
from .partitioner import CachedKeyPartitioner
from .wakeups import CoalescedWakeups

log = logging.getLogger(__name__)

CONNECT_RETRY_S = 1.0
# send() may block (for metadata, or for buffer space) on the event loop: keep that short.
MAX_BLOCK_MS = 250
# The producer expires a record this long before the request's deadline, so its own answer (which says
# whether the record left) normally comes first, and the deadline only guards against a bug.
EXPIRY_MARGIN_MS = 300
# web is started (ready to serve) once its first producer is connected, or this long after it began trying: a pod
# that starts while Kafka is away still serves history reads, and answers buys 503 JSON.
STARTUP_GRACE_S = 10.0

AWAITING = Gauge("purchases_awaiting_ack", "Purchases sent to Kafka whose acknowledgement is awaited",
                 multiprocess_mode="livesum")  # with workers: all of theirs
REPLACEMENTS = Counter("kafka_producer_replacements_total", "Producers replaced after a failed delivery")


def _expire(acked: asyncio.Future) -> None:
    if not acked.done():
        acked.set_result(KafkaError("no acknowledgement in time"))


def retire(producer: KafkaProducer, timeout_s: float) -> None:
    """Close a producer, for good, within about `timeout_s`; on an executor thread, never on the event loop.

    kafka-python's close() flushes first, and flush() raises when records are still unsettled after the timeout
    (a wedged producer's never settle): close() then stops neither its sender thread nor marks the producer
    closed, and KafkaProducer.__del__ flushes again, for a second, on whatever thread the garbage collector
    happens to run: the event loop (seen: buys answered 0.7 s past their deadline). So on that failure the
    sender is force-closed (its records fail, as they would have expired) and the producer marked closed
    (kafka-python 3.0's own attributes; the version is pinned)."""
    try:
        producer.close(timeout_s)
    except KafkaError as exc:
        log.warning("kafka producer closed with records unsettled", extra={"error": repr(exc)})
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
            sender.join(timeout_s)
        producer._closed = True


class Publisher:
    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._producer: KafkaProducer | None = None
        self._linger: Linger | None = None
        self._tasks: list[asyncio.Task] = []
        self._replacing: asyncio.Task | None = None
        self._retiring: set[asyncio.Future] = set()
        self._awaiting = 0
        self._health = DeliveryHealth(wedged_after_s=config.wedged_after_s)
        self._probe = KafkaProbe(config.kafka)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at: float | None = None
        self._settled: collections.deque = collections.deque()  # (future, outcome), from the producer's thread
        self._wakeup_lock = threading.Lock()
        self._wakeup_pending = False

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background: web serves (and answers 503 to buys) until Kafka is reachable."""
        self._loop = asyncio.get_running_loop()
        self._started_at = time.monotonic()
        self._tasks = [asyncio.create_task(self._connect_first()), asyncio.create_task(self._probe.run())]

    async def close(self) -> None:
        for task in [*self._tasks, self._replacing]:
            if task is not None:
                task.cancel()
        loop = asyncio.get_running_loop()
        if self._retiring:
            await asyncio.wait(self._retiring)
        if self._producer is not None:
            # flush() waits for every record in flight; the handlers awaiting them complete first.
            await loop.run_in_executor(None, retire, self._producer, 10)
            self._producer = None
        self._probe.close()

    def _use(self, producer: KafkaProducer) -> None:
        """On the event loop's thread: the producer every buy sends with from now on."""
        self._linger = Linger(producer, self._config.linger_ms, self._config.linger_crowd)
        CoalescedWakeups.install(producer, self._loop)
        self._producer = producer

    async def _connect_first(self) -> None:
        self._use(await self._new_producer_when_kafka_answers())
        log.info("kafka producer connected", extra={"topic": self._config.kafka.topic})

    async def _new_producer_when_kafka_answers(self) -> KafkaProducer:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await loop.run_in_executor(None, self._new_producer)
            except KafkaError as exc:
                log.warning("kafka unreachable, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(CONNECT_RETRY_S)

    def _new_producer(self) -> KafkaProducer:
        """A connected producer with the topic's metadata, made on an executor thread.

        On failure it raises a KafkaError that holds no traceback of kafka-python's frames: a half-made producer
        referenced from one would be finalized wherever the exception is dropped, the event loop included, and
        KafkaProducer.__del__ may block for up to a second there (as `retire` explains)."""
        try:
            return self._connected_producer()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        gc.collect()  # here, on this thread: whatever the failed attempt left behind
        raise KafkaError(error)

    def _connected_producer(self) -> KafkaProducer:
        delivery_timeout = self._config.publish_timeout_ms - EXPIRY_MARGIN_MS
        producer = KafkaProducer(
            **self._config.kafka.client_options(),
            acks="all",
            enable_idempotence=True,
            linger_ms=self._config.linger_ms,
            delivery_timeout_ms=delivery_timeout,
            request_timeout_ms=max(delivery_timeout - self._config.linger_ms - 100, 100),
            max_block_ms=MAX_BLOCK_MS,
            bootstrap_timeout_ms=self._config.publish_timeout_ms,
            retry_backoff_ms=100,
            metrics_enabled=False,  # kafka-python's own sensors, recorded per record, are never read here
            partitioner=CachedKeyPartitioner(),  # the default choice; its pure-Python hash once per user
        )
        # Fetch the topic's metadata now: send() would otherwise block while it fetches it.
        try:
            if not producer.partitions_for(self._config.kafka.topic):
                raise KafkaError(f"topic {self._config.kafka.topic!r} does not exist")
        except Exception:
            producer.close(0)
            raise
        return producer

    # -- healing ----------------------------------------------------------------------------------

    def _delivery_failed(self, producer: KafkaProducer) -> None:
        self._health.failed(time.monotonic())
        if producer is self._producer and self._replacing is None:
            self._replacing = asyncio.create_task(self._replace(producer))

    async def _replace(self, old: KafkaProducer) -> None:
        """A new producer once Kafka answers; the old one retires when its records are settled."""
        log.warning("kafka producer failed a delivery; replacing it")
        try:
            self._use(await self._new_producer_when_kafka_answers())
            REPLACEMENTS.inc()
            log.info("kafka producer replaced", extra={"topic": self._config.kafka.topic})
        finally:
            self._replacing = None
        # Its records are acknowledged or expired within the delivery timeout; close() waits for that.
        retiring = asyncio.get_running_loop().run_in_executor(None, retire, old, self._config.publish_timeout_ms / 1000)
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)

    # -- state ------------------------------------------------------------------------------------

    @property
    def kafka(self) -> KafkaState:
        return self._probe.state

    @property
    def started(self) -> bool:
        """Its first producer is connected, or it has tried for STARTUP_GRACE_S (see there)."""
        return self._producer is not None or (
            self._started_at is not None and time.monotonic() - self._started_at >= STARTUP_GRACE_S)

    @property
    def ready(self) -> bool:
        """A producer, and Kafka answering with a leader for every partition of the topic, now."""
        return self._producer is not None and self._probe.state.can_take_purchases

    @property
    def wedged(self) -> bool:
        """Deliveries have only failed for a long while although Kafka answers: a restart is the remedy."""
        return self._health.wedged(time.monotonic(), self._probe.state.reachable)

    # -- publishing -------------------------------------------------------------------------------

    def deadline(self) -> float:
        """When a buy starting now must have its answer (the event loop's clock): the publish timeout."""
        return self._loop.time() + self._config.publish_timeout_ms / 1000

    async def publish(self, purchase: Purchase, deadline: float | None = None) -> None:
        """Return once the broker has acknowledged the purchase (acks=all); else raise ServiceUnavailable
        by `deadline` (default: the publish timeout from now). A 503 means the outcome is unknown: retry with
        the same Idempotency-Key."""
        deadline = deadline or self.deadline()
        producer = self._producer
        if producer is None:
            raise ServiceUnavailable("Kafka is not reachable yet; try again shortly", retry_after=2)
        if not self._probe.state.reachable:
            raise ServiceUnavailable("Kafka is not reachable; try again shortly", retry_after=2)
        if self._awaiting >= self._config.max_awaiting_ack:
            raise ServiceUnavailable("too many purchases awaiting Kafka; try again shortly", retry_after=1)
        self._linger.before_send(self._awaiting)
        self._awaiting += 1
        AWAITING.inc()
        try:
            outcome = await self._send(producer, purchase, deadline)
        finally:
            self._awaiting -= 1
            AWAITING.dec()
        if isinstance(outcome, Exception):
            self._delivery_failed(producer)
            log.warning("publish failed", extra={"purchase_id": purchase.id, "error": repr(outcome)})
            raise ServiceUnavailable(f"Kafka did not acknowledge the purchase: {type(outcome).__name__}")
        self._health.acknowledged()

    async def _send(self, producer: KafkaProducer, purchase: Purchase, deadline: float) -> object:
        """The broker's answer for one record: its metadata, or the exception that says why not."""
        acked: asyncio.Future = self._loop.create_future()
        try:
            record = producer.send(
                self._config.kafka.topic,
                key=purchase.user_id.encode("utf-8"),
                value=encode_event(purchase),
            )
        except KafkaError as exc:
            return exc
        record.add_both(self._settle_threadsafe, acked)
        # The deadline is a timer that settles the future itself: cheaper than asyncio.timeout_at per buy, which
        # makes a context, reschedules its handle and cancels the task (make profile).
        expiry = self._loop.call_at(deadline, _expire, acked)
        try:
            return await acked
        finally:
            expiry.cancel()

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

"""The purchases consumer: poll a batch, store it, dead-letter what can never be stored, then commit.

It runs on its own thread because kafka-python's consumer is blocking. Offsets are committed only once
every record of the batch is either stored or on the dead-letter topic, so a crash at any point means
redelivery, never loss; redelivery is harmless because the purchase id is the document's `_id`.
Commits are sent without waiting for their answer, one at a time, each carrying everything stored since the
last confirmed one (a failed one is simply sent again), and synchronously on shutdown. After a rebalance, a
partition's new owner starts at its last confirmed commit: at worst it re-reads a few stored records. What may be
committed, and for which partitions, is kept by offsets.py's CommitLedger, which also hears every rebalance: an
offset is never committed for a partition that changed hands since its records were polled.

While MongoDB (or Kafka, for dead letters) is failing, tenacity retries with exponential backoff and
jitter, and its sleeps are spent polling with every partition paused: the consumer keeps its place in
the group however long the outage lasts, instead of overrunning `max.poll.interval.ms`.

While one batch is being written (on a writer thread), the next is polled and decoded: one batch in flight,
finished (stored, dead letters sent, offsets recorded) before the next one starts, so per partition every
commit still follows the storage of everything before it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge, Histogram
from pymongo.errors import PyMongoError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from services.core.config import ApiConfig
from services.core.purchase import REASONS, ValidationError, decode_event, to_document, utc_now

from .offsets import CommitLedger
from .store import InsertResult, PurchaseWriter

log = logging.getLogger(__name__)

T = TypeVar("T")

CONSUMED = Counter("purchases_consumed_total", "Records read from the purchases topic")
STORED = Counter("purchases_stored_total", "Purchases newly written to MongoDB")
DUPLICATES = Counter("purchases_duplicate_total", "Redelivered purchases that were already stored")
RETRIED = Counter("purchase_store_retries_total", "Retries of a failed write: a batch's store, or its dead letters",
                  ["operation"])
DEAD_LETTERED = Counter("purchases_dead_lettered_total", "Records sent to the dead-letter topic, by why they can "
                        "never be stored", ["reason"])
for _reason in REASONS:  # every series exists from the start: an increase from 0 is one a rule can see
    DEAD_LETTERED.labels(_reason)
for _operation in ("store", "dead_letter"):
    RETRIED.labels(_operation)
COMMIT_FAILURES = Counter("consumer_commit_failures_total", "Offset commits that failed (records are redelivered)")
ACCEPTED_TO_STORED = Histogram(
    "purchase_accepted_to_stored_seconds", "From web accepting a purchase (its timestamp) to its batch being stored",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LAG = Gauge("consumer_lag", "Records behind the end of each assigned partition", ["topic", "partition"])

# The broker holds a fetch until it has FETCH_MIN_BYTES (~100 purchases) or FETCH_MAX_WAIT_MS has passed. Answered
# at once (the default, 1 byte), each fetch brought one or a few records, and every one of them cost a poll turn,
# an insert and a commit: at 200 purchases/s the api used 55 % of a core, FerretDB and PostgreSQL 22 %; waiting up
# to 25 ms brings batches and costs 15 % and 7 %, for ~25 ms more from accepted to stored at quiet times.
FETCH_MIN_BYTES = 32 * 1024
FETCH_MAX_WAIT_MS = 25
# Polling with everything paused still heartbeats and rebalances; one second keeps shutdown snappy.
PAUSED_POLL_MS = 1000
RECONNECT_S = 2.0
# A poll loop that has not turned for this long is stuck: /readyz says so.
STALL_S = 30.0


@dataclass
class Batch:
    """One poll's records, decoded: what to store, what to dead-letter, and the offsets they end at."""

    records: int
    documents: list[dict]
    poison: list[tuple]  # (record, the ValidationError that says why it can never be stored)
    offsets: dict[TopicPartition, OffsetAndMetadata]
    polled_at: int  # the assignment the records were read under (CommitLedger.now())
    writing: Future | None = None  # the first attempt at storing the documents: (result, when it was stored)


class PurchaseConsumer:
    def __init__(self, config: ApiConfig, writer: PurchaseWriter) -> None:
        self._config = config
        self._writer = writer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="purchase-consumer", daemon=True)
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="purchase-writer")
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._last_turn = 0.0
        self._ledger = CommitLedger()

    # -- lifecycle (called from the event loop) -----------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand (commit it if it is stored), leave the group and return."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return (
            self._thread.is_alive()
            and self._consumer is not None
            and time.monotonic() - self._last_turn < STALL_S
        )

    # -- the loop (consumer thread) -----------------------------------------------------------------

    def _run(self) -> None:
        if not self._connect():
            return
        consumer = self._consumer
        assert consumer is not None
        in_flight: Batch | None = None
        try:
            while not self._stop.is_set():
                self._last_turn = time.monotonic()
                try:
                    polled = consumer.poll(timeout_ms=100 if in_flight else 500,
                                           max_records=self._config.batch_size)
                    batch = self._prepare(polled, self._ledger.now()) if polled else None
                    if in_flight is not None:
                        self._finish(in_flight)
                        in_flight = None
                    if batch is not None:
                        batch.writing = self._writer_thread.submit(self._insert, batch.documents)
                        in_flight = batch
                    self._commit_async()
                    self._update_lag()
                except (KafkaError, PyMongoError) as exc:
                    # Only reached on shutdown mid-retry or a Kafka error outside a retry: nothing was
                    # committed for the batch in hand, so it is redelivered.
                    log.warning("batch not committed; it will be redelivered", extra={"error": repr(exc)})
            if in_flight is not None:
                self._finish(in_flight)  # stopping: store what is being written, so it is committed below
        except (KafkaError, PyMongoError) as exc:
            log.warning("batch not committed; it will be redelivered", extra={"error": repr(exc)})
        except Exception:
            log.exception("consumer loop crashed")
            raise
        finally:
            self._writer_thread.shutdown(wait=True)
            self._close()

    def _connect(self) -> bool:
        kafka = self._config.kafka
        while not self._stop.is_set():
            try:
                self._consumer = KafkaConsumer(
                    **kafka.client_options(),
                    group_id=kafka.consumer_group,
                    client_id=f"api-{threading.get_native_id()}",
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    max_poll_records=self._config.batch_size,
                    session_timeout_ms=self._config.session_timeout_ms,
                    fetch_min_bytes=FETCH_MIN_BYTES,
                    fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                    # Notice within 30 s a topic created after we started (the chart's topics Job, say).
                    metadata_max_age_ms=30_000,
                    metrics_enabled=False,  # kafka-python's own sensors, recorded per record, are never read
                    # Eager rebalances (kafka-python's default, said here because CommitLedger relies on it).
                    partition_assignment_strategy=(RangePartitionAssignor, RoundRobinPartitionAssignor),
                )
                self._consumer.subscribe([kafka.topic], listener=self._ledger)
                self._producer = KafkaProducer(**kafka.client_options(), acks="all", enable_idempotence=True)
                log.info("consumer started", extra={"topic": kafka.topic, "group": kafka.consumer_group})
                return True
            except KafkaError as exc:
                log.warning("kafka unreachable, retrying", extra={"error": repr(exc)})
                self._stop.wait(RECONNECT_S)
        return False

    def _close(self) -> None:
        if self._consumer is not None:
            # What was stored, committed for sure; autocommit=False: nothing beyond it may be.
            self._commit_stored()
            self._consumer.close(autocommit=False, timeout_ms=5000)
        if self._producer is not None:
            self._producer.close(5)
        log.info("consumer stopped and left the group")

    def _prepare(self, polled: dict, polled_at: int) -> Batch:
        records = [record for partition_records in polled.values() for record in partition_records]
        CONSUMED.inc(len(records))
        documents, poison = [], []
        for record in records:
            try:
                documents.append(to_document(decode_event(record.value)))
            except ValidationError as exc:
                poison.append((record, exc))
        offsets = {tp: OffsetAndMetadata(last[-1].offset + 1, "", last[-1].leader_epoch or -1)
                   for tp, last in polled.items() if last}
        return Batch(len(records), documents, poison, offsets, polled_at)

    def _insert(self, documents: list[dict]) -> tuple[InsertResult, datetime]:
        """Store the documents; the time returned is when they became readable (the batch is finished later,
        after the next poll)."""
        return self._writer.insert(documents), utc_now()

    def _finish(self, batch: Batch) -> None:
        """Make sure the batch is stored (retrying if its first attempt failed), dead-letter its poison,
        then record its offsets for the next commit."""
        try:
            result, stored_at = batch.writing.result()
        except (PyMongoError, KafkaError) as exc:
            RETRIED.labels("store").inc()
            log.warning("store failed, retrying", extra={"attempt": 1, "error": repr(exc)})
            result, stored_at = self._retrying(lambda: self._insert(batch.documents), "store")
        STORED.inc(result.inserted)
        DUPLICATES.inc(result.duplicates)
        debug = log.isEnabledFor(logging.DEBUG)
        for doc in batch.documents:
            ACCEPTED_TO_STORED.observe(max((stored_at - doc["timestamp"]).total_seconds(), 0))
            if debug:
                log.debug("purchase stored", extra={"purchase_id": doc["_id"]})
        if batch.poison:
            self._retrying(lambda: self._dead_letter(batch.poison), "dead_letter")

        self._resume()
        # A partition that changed hands since the poll (while we retried, say) is left out: whoever holds it now
        # reads these records again from the group's last commit.
        recorded = self._ledger.stored(batch.offsets, batch.polled_at)
        fields = {
            "records": batch.records, "stored": result.inserted, "duplicates": result.duplicates,
            "dead_lettered": len(batch.poison),
            "first_purchase_id": batch.documents[0]["_id"] if batch.documents else None}
        if left_out := sorted(tp.partition for tp in batch.offsets.keys() - recorded.keys()):
            fields["partitions_not_committed"] = left_out
        log.info("batch stored", extra=fields)

    def _dead_letter(self, poison: list) -> None:
        assert self._producer is not None
        futures = [
            self._producer.send(
                self._config.kafka.dead_letter_topic,
                key=record.key,
                value=record.value,
                headers=[
                    ("reason", error.message.encode("utf-8")),
                    ("source-topic", record.topic.encode()),
                    ("source-partition", str(record.partition).encode()),
                    ("source-offset", str(record.offset).encode()),
                ],
            )
            for record, error in poison
        ]
        for future in futures:
            future.get(timeout=30)
        for record, error in poison:
            DEAD_LETTERED.labels(error.reason).inc()
            log.warning("record dead-lettered", extra={
                "reason": error.message, "reason_code": error.reason, "partition": record.partition,
                "offset": record.offset})

    def _commit_async(self) -> None:
        """Send one commit of everything stored and not yet confirmed, unless one is already on its way."""
        offsets = self._ledger.next_commit(self._consumer.assignment())
        if not offsets:
            return
        try:
            self._consumer.commit_async(offsets, callback=self._on_commit)
        except Exception:
            self._ledger.commit_done(offsets, confirmed=False)
            raise

    def _on_commit(self, offsets: dict, response: object) -> None:
        """Runs on kafka-python's I/O thread."""
        failed = isinstance(response, Exception)
        self._ledger.commit_done(offsets, confirmed=not failed)
        if failed:
            COMMIT_FAILURES.inc()
            log.warning("offset commit failed; it is sent again", extra={"error": repr(response)})

    def _commit_stored(self) -> None:
        """On shutdown: commit, and wait for, what was stored for the partitions we still hold."""
        offsets = self._ledger.final_commit(self._consumer.assignment())
        if not offsets:
            return
        try:
            self._consumer.commit(offsets, timeout_ms=10_000)
        except (CommitFailedError, KafkaError) as exc:
            COMMIT_FAILURES.inc()
            log.warning("offset commit failed; records will be redelivered", extra={"error": repr(exc)})

    def _update_lag(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        LAG.clear()
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)  # known once a fetch for the partition has returned
            if highwater is None:
                continue
            try:
                position = consumer.position(tp, timeout_ms=100)
            except KafkaError:
                continue
            LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))

    # -- retries ------------------------------------------------------------------------------------

    def _retrying(self, operation: Callable[[], T], what: str) -> T:
        retryer = Retrying(
            retry=retry_if_exception_type((PyMongoError, KafkaError)),
            wait=wait_exponential_jitter(initial=0.2, max=5.0),
            stop=lambda state: self._stop.is_set(),  # on shutdown give up: the batch is not committed
            sleep=self._sleep_polling,
            before_sleep=lambda state: self._log_retry(state, what),
            reraise=True,
        )
        return retryer(operation)

    @staticmethod
    def _log_retry(state: RetryCallState, what: str) -> None:
        RETRIED.labels(what).inc()
        log.warning(f"{what.replace('_', ' ')} failed, retrying", extra={
            "attempt": state.attempt_number, "error": repr(state.outcome.exception()),
            "retry_in_s": round(state.upcoming_sleep, 2)})

    def _sleep_polling(self, seconds: float) -> None:
        """Wait, but keep polling with every partition paused, so the group keeps this member."""
        consumer = self._consumer
        assert consumer is not None
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            self._last_turn = time.monotonic()
            consumer.pause(*consumer.assignment())
            records = consumer.poll(timeout_ms=int(min(remaining * 1000, PAUSED_POLL_MS)) or 1)
            # A rebalance inside poll() can hand us new, unpaused partitions whose records came back:
            # rewind them so they are read again once we resume; nothing is skipped.
            for tp, partition_records in records.items():
                consumer.seek(tp, partition_records[0].offset)
                consumer.pause(tp)

    def _resume(self) -> None:
        assert self._consumer is not None
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)


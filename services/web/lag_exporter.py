"""The api's consumer group lag, per partition, exported by web (see services/common/lag.py for why from outside).

A frozen, crashed or evicted api exports nothing, and between its batches it sees no lag at all; web keeps
answering buys meanwhile, so web is where the backlog is measured: every LAG_EXPORT_INTERVAL_S, on a thread of its
own (a slow broker never blocks the event loop), into `consumer_group_lag{group, topic, partition}`. Every web pod
exports the same series; rules take their max. KEDA's `keda_scaler_metrics_value` is the same number as the HPA sees
it, where KEDA runs; this one works anywhere, `make dev` included.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time

from prometheus_client import Counter, Gauge

from services.common.lag import LagReader
from services.core.config import KafkaConfig

log = logging.getLogger(__name__)

LAG = Gauge("consumer_group_lag", "Records of the topic not yet committed by the consumer group, per partition "
            "(committed offset against the partition's end, asked of Kafka)", ["group", "topic", "partition"],
            multiprocess_mode="livemostrecent")  # with workers (services/common/workers.py): the first's
SAMPLED = Gauge("consumer_group_lag_sampled_timestamp_seconds", "When consumer_group_lag was last read from Kafka "
                "(Unix time)", multiprocess_mode="livemax")
FAILURES = Counter("consumer_group_lag_read_failures_total", "Reads of the consumer group's lag that failed")


class LagExporter:
    def __init__(self, kafka: KafkaConfig, interval_s: float) -> None:
        self._kafka = kafka
        self._interval_s = interval_s
        self._reader: LagReader | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lag-exporter")
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._interval_s > 0:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.get_running_loop().run_in_executor(None, reader.close)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failing, partitions = False, set()
        while True:
            try:
                lag = await asyncio.wait_for(loop.run_in_executor(self._thread, self._read), self._interval_s * 2)
            except Exception as exc:  # any failure is a gap in the series and a count, never a crash of web
                FAILURES.inc()
                if not failing:
                    log.warning("consumer group lag could not be read", extra={"error": repr(exc)[:200]})
                failing = True
            else:
                if partitions - lag.partitions.keys():  # a topic made again with fewer: no stale series
                    LAG.clear()
                partitions = set(lag.partitions)
                for partition, records in lag.partitions.items():
                    LAG.labels(self._kafka.consumer_group, self._kafka.topic, str(partition)).set(records)
                SAMPLED.set(time.time())
                failing = False
            await asyncio.sleep(self._interval_s)

    def _read(self):
        """On the exporter's thread: a reader is made (again) after a failure, so a broken connection heals."""
        try:
            if self._reader is None:
                self._reader = LagReader(self._kafka, timeout_ms=int(self._interval_s * 1000))
            return self._reader.read()
        except Exception:
            reader, self._reader = self._reader, None
            if reader is not None:
                try:
                    reader.close()
                except Exception:
                    pass
            raise

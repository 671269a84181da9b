"""--lag: the consumer group's lag sampled during the run (the signal KEDA scales on), until it is back to 0."""

from __future__ import annotations

import asyncio
import time

from services.common.lag import LagReader

from .outcomes import Run


async def sample_lag(bootstrap: str, group: str, topic: str, run: Run, until: asyncio.Event,
                     settle_s: float, every_s: float = 0.5) -> None:
    """Lag during the run and for up to `settle_s` after it, until it is back to zero."""
    loop = asyncio.get_running_loop()
    reader = await loop.run_in_executor(None, LagReader.at, bootstrap, group, topic)
    origin = time.monotonic()
    stop_at: float | None = None
    try:
        while True:
            lag = await loop.run_in_executor(None, reader.read)
            run.lag.append({"t_s": round(time.monotonic() - origin, 2), "total": lag.total,
                            "partitions": lag.partitions})
            if until.is_set():
                stop_at = stop_at or time.monotonic() + settle_s
                if lag.total == 0 or time.monotonic() > stop_at:
                    break
            await asyncio.sleep(every_s)
    finally:
        reader.close()

"""What web knows of its deliveries to Kafka, and when that says the producer is wedged. No I/O.

kafka-python's idempotent producer can stay wedged after its batches expire during a broker crash: Kafka is
back and answers metadata, yet no record is ever acknowledged again. The publisher replaces a producer after a
failed delivery; if failures go on regardless, for longer than `wedged_after_s`, while Kafka itself is
reachable, the process cannot heal itself and liveness fails, so Kubernetes restarts it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Failures older than this do not count as "still failing": without traffic nothing can fail, and a quiet
# web must not look wedged because of failures it saw during an outage long ago.
RECENT_S = 10.0


@dataclass
class DeliveryHealth:
    wedged_after_s: float = 60.0
    failing_since: float | None = None  # first failed delivery since the last acknowledged one
    last_failure: float | None = None

    def acknowledged(self) -> None:
        self.failing_since = None

    def failed(self, now: float) -> None:
        if self.failing_since is None:
            self.failing_since = now
        self.last_failure = now

    def wedged(self, now: float, kafka_reachable: bool) -> bool:
        """Deliveries have failed, and only failed, for `wedged_after_s` and still do, while Kafka answers."""
        return (
            kafka_reachable
            and self.failing_since is not None
            and now - self.failing_since >= self.wedged_after_s
            and self.last_failure is not None
            and now - self.last_failure <= RECENT_S
        )

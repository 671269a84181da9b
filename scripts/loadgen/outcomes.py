"""What a load run records: each request's outcome, and the run's totals and percentiles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    user: str
    started: float  # monotonic seconds
    latency_ms: float
    status: int | None  # None: connection error or timeout
    purchase_id: str | None = None


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    interrupted: bool = False
    lag: list[dict[str, Any]] = field(default_factory=list)
    visible_ms: dict[str, float] = field(default_factory=dict)  # purchase id -> ms from sending it to visible
    missing: list[str] = field(default_factory=list)  # accepted, but not in its user's history at the end
    unreadable: list[str] = field(default_factory=list)  # users whose history could not be read at the end
    duplicated: list[str] = field(default_factory=list)  # in a history more than once
    unexpected: int = 0  # in this run's users' histories, but never accepted by this run
    reads: int = 0  # history reads the verifier made
    read_rate: float = 0.0  # a second, over the verification
    cpu_s: float = 0.0  # the load generator's own CPU time (user + system), sending and verifying

    @property
    def accepted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 202 and o.purchase_id]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 2)


def latency_summary(values: list[float], points=(50, 90, 99)) -> dict[str, float | None]:
    summary = {f"p{p}": percentile(values, p) for p in points}
    summary["max"] = round(max(values), 2) if values else None
    return summary

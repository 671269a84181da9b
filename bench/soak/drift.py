"""Drift: each figure's mean over the first and the last few minutes of the soak, and their table."""

from __future__ import annotations

import statistics

EDGE_S = 300.0  # the first and last five minutes, compared


def edge_s(minutes: float) -> float:
    """How much of the start and the end is compared: five minutes, or a third of a run shorter than 15."""
    return EDGE_S if minutes >= 15 else minutes * 60 / 3


def drift(samples: list[dict], minutes: float) -> dict:
    """Each figure's mean over the first and the last edge_s() of the run."""
    if not samples:
        return {}
    edge = edge_s(minutes)
    end = samples[-1]["t_s"]
    first = [s for s in samples if s["t_s"] <= edge]
    last = [s for s in samples if s["t_s"] > end - edge]
    figures = [k for k in samples[0] if k not in ("t_s", "buys")]

    def mean(rows, key):
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.fmean(values), 2) if values else None
    return {key: {"first": mean(first, key), "last": mean(last, key)} for key in figures}


def table(drifts: dict, minutes: float) -> str:
    edge = f"{edge_s(minutes) / 60:g} min"
    rows = [f"| {key} | {pair['first']} | {pair['last']} |" for key, pair in drifts.items()]
    return "\n".join([f"| figure | first {edge} | last {edge} |", "| --- | --- | --- |", *rows])

"""What a run prints: its progress bar, its report (a dict, and --json), the summary, and --plot."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from typing import Any

from .outcomes import Run, latency_summary


async def progress(run: Run, total: int, until: asyncio.Event) -> None:
    while not until.is_set():
        done = len(run.outcomes)
        elapsed = max(time.monotonic() - run.started, 1e-6) if run.started else 1e-6
        width = 30
        filled = int(width * done / total) if total else width
        ok = sum(1 for o in run.outcomes if o.status == 202)
        lag = f" lag={run.lag[-1]['total']}" if run.lag else ""
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} accepted={ok} "
              f"{done / elapsed:7.0f}/s{lag}   ", end="", file=sys.stderr, flush=True)
        try:
            await asyncio.wait_for(until.wait(), 0.25)
        except TimeoutError:
            pass
    print(file=sys.stderr)


def report(run: Run, verified: bool) -> dict[str, Any]:
    statuses = Counter(o.status for o in run.outcomes)
    classes = Counter("error" if s is None else f"{s // 100}xx" for s in statuses.elements())
    elapsed = max(run.finished - run.started, 1e-6)
    result: dict[str, Any] = {
        "sent": len(run.outcomes),
        "accepted": len(run.accepted),
        "status_counts": {"2xx": classes["2xx"], "4xx": classes["4xx"], "5xx": classes["5xx"],
                          "connection_errors": classes["error"]},
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))},
        "duration_s": round(elapsed, 2),
        "rate": round(len(run.outcomes) / elapsed, 1),
        "latency_ms": latency_summary([o.latency_ms for o in run.outcomes if o.status is not None]),
        "interrupted": run.interrupted,
        # Its own cost: CPU seconds over the run's wall time, as a share of the machine's cores.
        "client_cpu_s": round(run.cpu_s, 2),
        "client_cpu_share": round(run.cpu_s / max(time.monotonic() - run.started, 1e-6) / (os.cpu_count() or 1), 3),
    }
    if verified:
        result["verify"] = {
            "missing": len(run.missing), "missing_ids": run.missing[:20],
            "duplicated": len(run.duplicated), "duplicated_ids": run.duplicated[:20],
            "unexpected": run.unexpected,
            "unreadable_users": len(run.unreadable), "unreadable_user_ids": run.unreadable[:20],
            "visible_ms": latency_summary(list(run.visible_ms.values())),
            "reads": run.reads, "read_rate": round(run.read_rate, 1),
        }
    if run.lag:
        result["lag"] = run.lag
        result["lag_max"] = max(sample["total"] for sample in run.lag)
    return result


def print_summary(result: dict[str, Any]) -> None:
    counts = result["status_counts"]
    lat = result["latency_ms"]
    lines = [
        f"sent        {result['sent']} in {result['duration_s']} s = {result['rate']}/s"
        + (" (interrupted)" if result["interrupted"] else ""),
        f"statuses    2xx={counts['2xx']} 4xx={counts['4xx']} 5xx={counts['5xx']} "
        f"connection errors={counts['connection_errors']}   {result['statuses']}",
        f"latency ms  p50={lat['p50']} p90={lat['p90']} p99={lat['p99']} max={lat['max']}",
        f"client      {result['client_cpu_s']} s of CPU, {result['client_cpu_share']:.1%} of the machine's cores",
    ]
    if "verify" in result:
        v = result["verify"]
        lines.append(f"verify      missing={v['missing']} duplicated={v['duplicated']} unexpected={v['unexpected']} "
                     f"unreadable users={v['unreadable_users']}"
                     f"  visible after ms p50={v['visible_ms']['p50']} p90={v['visible_ms']['p90']} "
                     f"p99={v['visible_ms']['p99']}  ({v['reads']} history reads, {v['read_rate']}/s)")
        if v["missing_ids"]:
            lines.append(f"            missing ids (first 20): {', '.join(v['missing_ids'])}")
        if v["unreadable_user_ids"]:
            lines.append("            history unreadable (first 20), not verified: "
                         + ", ".join(v["unreadable_user_ids"]))
    if "lag" in result:
        lines.append(f"lag         max={result['lag_max']} last={result['lag'][-1]['total']} "
                     f"({len(result['lag'])} samples)")
    print("\n".join(lines), file=sys.stderr)


def plot(run: Run, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=False)
    points = sorted((o.started - run.started, o.latency_ms) for o in run.outcomes if o.status is not None)
    top.scatter([t for t, _ in points], [ms for _, ms in points], s=3, alpha=0.5)
    top.set(title="POST /api/buy latency", xlabel="seconds into the run", ylabel="ms")
    if run.lag:
        bottom.plot([s["t_s"] for s in run.lag], [s["total"] for s in run.lag], marker=".")
    bottom.set(title="consumer group lag (records)", xlabel="seconds since sampling began", ylabel="records")
    figure.tight_layout()
    figure.savefig(path, dpi=110)

"""soak.png: memory, descriptors, latency, and the lag with the 503 rate, over the soak's minutes."""

from __future__ import annotations

from pathlib import Path


def plot(samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    panels = [
        ("resident memory (MiB)", [("web_rss_mib", "web"), ("api_rss_mib", "api")]),
        ("open descriptors", [("web_fds", "web"), ("api_fds", "api")]),
        ("latency (ms)", [("buy_p50_ms", "buy p50"), ("buy_p99_ms", "buy p99"), ("read_p99_ms", "history read p99")]),
        ("consumer lag (records) and 503 rate (‰)", [("lag", "lag")]),
    ]
    for axis, (title, series) in zip(axes, panels, strict=True):
        for key, label in series:
            axis.plot(t, [s[key] if s[key] is not None else float("nan") for s in samples], label=label)
        axis.set_title(title)
        axis.grid(alpha=0.3)
    axes[3].plot(t, [s["buy_503_rate"] * 1000 for s in samples], label="503 ‰")
    for axis in axes:
        axis.legend(loc="upper right")
    axes[-1].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=80)

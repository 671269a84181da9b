"""`make soak`'s program, run briefly as a user runs it: it samples, accounts for every buy against the real store,
reports drift, draws its plot, and exits 0 only when nothing was lost and nothing unexpected stored."""

import json
import subprocess
import sys

from scripts.stack.paths import ROOT


def test_a_short_soak_samples_every_10s_verifies_every_purchase_and_writes_its_report(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "0.5", "--rate", "50", "--reads", "5",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((tmp_path / "soak.json").read_text())
    times = [s["t_s"] for s in result["samples"]]
    assert len(times) >= 3 and 9 <= times[0] <= 12 and times == sorted(times)  # every 10 s (and one at the end)
    assert result["verify"]["accepted"] == result["buys"]["202"] >= 1400  # 50/s for 30 s, all accepted
    assert (result["verify"]["lost"], result["verify"]["unexpected"]) == (0, 0)
    assert result["verify"]["stored"] == result["verify"]["sent"] == sum(result["buys"].values())
    assert {"web_rss_mib", "api_fds", "lag", "buy_p99_ms"} <= set(result["drift"])
    assert result["drift"]["web_rss_mib"]["first"] > 0 and result["drift"]["web_rss_mib"]["last"] > 0
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert "| web_rss_mib |" in done.stdout

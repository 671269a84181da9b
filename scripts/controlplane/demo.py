"""`make autoscale-demo`: KEDA scaling the api on real lag, for a person to watch.

    python -m scripts.controlplane.demo [--purchases 20000] [--png autoscale.png] [--dir DIR]

Starts the local stack and the control plane with KEDA, installs the chart (KEDA polling every 2 s and a
30-second scale-down window, so the loop takes minutes, not ten), fires a burst through web with
scripts/load.py and stalls the database for --stall seconds during it (one api here stores faster than web
accepts, so without a stall the lag stays small and KEDA rightly keeps one replica: try --stall 0), prints one
line a second (lag, replicas desired and ready, consumers), and draws them into a PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.stack.process import StackError, say

from . import build
from .__main__ import DEFAULT_DIR, fresh, interrupt_on_sigterm
from .autoscale import FAST_LOOP, Sample, burst, plot
from .local import LocalCluster
from .release import NAMESPACE, merge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purchases", type=int, default=20_000)
    parser.add_argument("--stall", type=float, default=20.0, help="seconds the database stalls, 5 s into the burst")
    parser.add_argument("--png", type=Path, default=Path("autoscale.png"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    interrupt_on_sigterm()
    cluster = LocalCluster(fresh(args.dir))
    try:
        cluster.start()
        cluster.release.upgrade_install(merge(cluster.values(), FAST_LOOP), "demo")
        kubeconfig = cluster.control_plane.kubeconfig
        print(f"\n  watch it live, in another terminal:\n"
              f"  export KUBECONFIG={kubeconfig} PATH={build.BIN}:$PATH\n"
              f"  kubectl get hpa,pods -n {NAMESPACE} -w\n", flush=True)
        print(Sample.HEADER, flush=True)
        result = burst(cluster, args.purchases, stall_database_s=args.stall,
                       on_sample=lambda sample: print(sample.line(), flush=True))
        summary = result.summary()
        stall = f", the database stalled {args.stall:.0f} s" if args.stall else ""
        plot(result, args.png, f"{args.purchases:,} purchases{stall}: KEDA {build.KEDA_VERSION} scales the api "
                               f"on Kafka lag (Kubernetes {build.KUBERNETES_VERSION}, a real node)")
        print("\n" + "\n".join(f"  {key:20} {value}" for key, value in summary.items()))
        print(f"\n  picture: {args.png.resolve()}", flush=True)
        verified = summary["stored_missing"] == 0 and summary["stored_duplicated"] == 0
        return 0 if verified and not summary["unreadable_users"] else 1
    except KeyboardInterrupt:
        return 130
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        say("stopping everything the demo started")
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())

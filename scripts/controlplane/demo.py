"""`make autoscale-demo`: KEDA scaling the api on real lag, for a person to watch.

    python -m scripts.controlplane.demo [--purchases 20000] [--png docs/autoscale-demo.png] [--dir DIR]

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

from scripts.stack.paths import ROOT

from . import build
from .__main__ import DEFAULT_DIR, on_a_cluster
from .autoscale import FAST_LOOP, Sample, burst, plot
from .local import LocalCluster
from .release import NAMESPACE, merge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args = burst_arguments(parser, ROOT / "docs" / "autoscale-demo.png").parse_args(argv)

    def demo(cluster: LocalCluster) -> int:
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
    return on_a_cluster(args.dir, demo)


def burst_arguments(parser: argparse.ArgumentParser, png: Path) -> argparse.ArgumentParser:
    """The demo's and make observability's options: the burst, the stall, the picture, the folder."""
    parser.add_argument("--purchases", type=int, default=20_000)
    parser.add_argument("--stall", type=float, default=20.0, help="seconds the database stalls, 5 s into the burst")
    parser.add_argument("--png", type=Path, default=png)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    return parser


if __name__ == "__main__":
    sys.exit(main())

"""`make cluster`: the local control plane with KEDA, the local stack, and the chart installed, until Ctrl-C.

    python -m scripts.controlplane [--no-install] [--dir DIR]

Prints the kubeconfig and how to use kubectl and helm against it; Ctrl-C stops everything it started (the pods,
the node, KEDA, the control plane, the registry, Kafka and FerretDB). The first run builds the binaries (about
30 minutes) and the images. Root only: the node's containers and network are the host's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scripts.stack.errors import StackError, say
from scripts.stack.paths import ROOT
from scripts.tools import helm_binary, require_tilt

from . import build
from .local import LocalCluster
from .release import NAMESPACE
from .tilt import tilt_env

DEFAULT_DIR = Path(os.environ.get("CLUSTER_DIR") or ROOT / ".cluster")


def interrupt_on_sigterm() -> None:
    """SIGINT and SIGTERM both stop the run through KeyboardInterrupt (a script may hand us SIGINT ignored)."""
    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def usage(cluster: LocalCluster, values: Path | None) -> str:
    kubeconfig = cluster.control_plane.kubeconfig
    release = cluster.release
    lines = [
        "",
        f"  kubeconfig  {kubeconfig}",
        f"  kubectl     {build.binary('kubectl')}  (Kubernetes {build.KUBERNETES_VERSION}; KEDA {build.KEDA_VERSION})",
        "",
        f"  export KUBECONFIG={kubeconfig} PATH={build.BIN}:{helm_binary().parent}:$PATH",
        f"  kubectl get nodes,pods,svc -n {NAMESPACE}",
        f"  kubectl get scaledobject,hpa -n {NAMESPACE} -w",
        "  kubectl get --raw /apis/external.metrics.k8s.io/v1beta1 | head -c 300",
        f"  helm upgrade --install {release.name} {release.chart} -n {NAMESPACE} -f <values> --wait --wait-for-jobs",
    ]
    if values is not None:
        web = cluster.service_url(release.object_name("web"))
        lines += [
            f"      (this run's values: {values})",
            "",
            f"  web (its Service's ClusterIP, through kube-proxy): {web}/",
            f"  curl -s -X POST {web}/api/buy -H 'Content-Type: application/json' "
            "-d '{\"username\":\"elad\",\"userId\":\"555\",\"price\":12.00}'",
            f"  python scripts/load.py --url {web} --burst 20000 --lag --bootstrap {cluster.kafka.address}",
        ]
    tilt = tilt_env(kubeconfig, cluster.docker_api, Path.home())
    settings = " ".join(f"{name}={tilt[name]}" for name in ("DOCKER_HOST", "DOCKER_BUILDKIT", "PYTHON_IMAGE",
                                                            "TILT_WEB_MODE"))
    lines += ["", "  Tilt, against this cluster and its Kafka and FerretDB (from the repository's root):",
              f"  {settings} KUBECONFIG={kubeconfig} PATH={helm_binary().parent}:$PATH \\",
              f"    {require_tilt()} up -- --kafka {cluster.kafka.address} --mongodb-uri {cluster.ferretdb.address}"]
    lines += ["", f"  kubectl logs -n {NAMESPACE} deploy/{release.object_name('api')}",
              f"  kubectl port-forward -n {NAMESPACE} svc/{release.object_name('web')} 8080:8080",
              "", "  Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def on_a_cluster(folder: Path, work: Callable[[LocalCluster], int], interrupted: int = 130) -> int:
    """`work` on a local cluster started in `folder` (emptied first), stopped whatever happens; Ctrl-C or SIGTERM
    end it with `interrupted`, a StackError with 1 and the reason. make cluster, the demo and make observability."""
    os.chdir(ROOT)
    interrupt_on_sigterm()
    cluster = LocalCluster(fresh(folder))
    try:
        cluster.start()
        return work(cluster)
    except KeyboardInterrupt:
        return interrupted
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say("stopping the pods, the node, KEDA, the control plane, the registry, Kafka and FerretDB")
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="working folder (emptied first)")
    parser.add_argument("--no-install", action="store_true", help="start the cluster without installing the chart")
    args = parser.parse_args(argv)

    def serve(cluster: LocalCluster) -> int:
        values = None
        if not args.no_install:
            cluster.release.upgrade_install(cluster.values(), "local")
            values = cluster.release.values_file("local")
        print(usage(cluster, values), flush=True)
        while True:
            time.sleep(1)
    return on_a_cluster(args.dir, serve, interrupted=0)


if __name__ == "__main__":
    sys.exit(main())

"""A real Kubernetes control plane as local processes: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler (kwokctl generates their certificates and flags and starts them), and KEDA.

kwokctl is only the launcher here: its kwok controller (fake nodes) is disabled. The pods run on the real node
(node.py), which joins this control plane; the API server reaches its kubelet for logs, exec and port-forward
with the cluster's admin certificate, which the kubelet trusts through the cluster CA.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import yaml

from scripts.stack.errors import StackError, say
from scripts.stack.process import Finished, free_port, run

from . import build
from .errors import ClusterError
from .keda import Keda
from .kube import Kube
from .network import SERVICE_RANGE

NAME = "purchase"
# The HPA controller's loop; Kubernetes' default is 15 s. Shorter, so a demo's scaling follows KEDA's 5 s polls.
HPA_SYNC_PERIOD = "5s"


class ControlPlane:
    """Started by start(), stopped by stop(); `kubeconfig` and `kube` are valid in between."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kwok_workdir = self.workdir / "kwok"
        self.kube: Kube | None = None
        self.keda: Keda | None = None
        self.started_kwokctl = False

    def _kwokctl(self, *args: str, timeout: float = 300) -> Finished:
        return run([str(build.binary("kwokctl")), "--name", NAME, *args], timeout=timeout, error=ClusterError,
                   env={**os.environ, "KWOK_WORKDIR": str(self.kwok_workdir)})

    @property
    def pki(self) -> Path:
        return self.kwok_workdir / "clusters" / NAME / "pki"

    def _config(self) -> Path:
        ca = self.pki / "ca.crt"
        options = {
            "runtime": "binary", "bindAddress": "127.0.0.1", "securePort": True,
            "kubeAuthorization": True, "kubeAdmission": True,
            "kubeApiserverPort": free_port(), "etcdPort": free_port(), "etcdPeerPort": free_port(),
            "kubeControllerManagerPort": free_port(), "kubeSchedulerPort": free_port(),
            "kwokControllerPort": free_port(),
            "etcdBinary": str(build.binary("etcd")), "kubeApiserverBinary": str(build.binary("kube-apiserver")),
            "kubeControllerManagerBinary": str(build.binary("kube-controller-manager")),
            "kubeSchedulerBinary": str(build.binary("kube-scheduler")),
            "kubectlBinary": str(build.binary("kubectl")),
            "disable": ["kwok-controller"],
        }
        patches = [
            # The aggregation layer's client (the API server itself, with kwokctl's admin certificate) is
            # trusted by extension servers such as KEDA's adapter through this CA, under that one name.
            {"name": "kube-apiserver", "extraArgs": [
                {"key": "requestheader-client-ca-file", "value": str(ca)},
                {"key": "requestheader-allowed-names", "value": "kwok-admin"},
                {"key": "requestheader-username-headers", "value": "X-Remote-User"},
                {"key": "requestheader-group-headers", "value": "X-Remote-Group"},
                {"key": "requestheader-extra-headers-prefix", "value": "X-Remote-Extra-"},
                # The kubelet's API (logs, exec, port-forward): the API server authenticates with this certificate.
                {"key": "kubelet-client-certificate", "value": str(self.pki / "admin.crt")},
                {"key": "kubelet-client-key", "value": str(self.pki / "admin.key")},
                {"key": "kubelet-preferred-address-types", "value": "InternalIP"},  # its name is not in any DNS
                {"key": "service-cluster-ip-range", "value": str(SERVICE_RANGE)}]},
            {"name": "kube-controller-manager", "extraArgs": [
                {"key": "horizontal-pod-autoscaler-sync-period", "value": HPA_SYNC_PERIOD}]},
        ]
        documents = [{"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokctlConfiguration",
                      "options": options, "componentsPatches": patches}]
        path = self.workdir / "kwokctl.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        return path

    def start(self, keda: bool = True) -> ControlPlane:
        """`keda`: start KEDA too (else start_keda() later, once the address its metrics are served on exists)."""
        build.build()
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.kwok_workdir, ignore_errors=True)
        started = time.monotonic()
        say(f"starting the control plane (Kubernetes {build.KUBERNETES_VERSION}, etcd {build.ETCD_VERSION}; "
            f"kwokctl {build.KWOK_VERSION} launches them) in {self.workdir}")
        self.started_kwokctl = True
        self._kwokctl("create", "cluster", "--config", str(self._config()), "--kubeconfig", str(self.kubeconfig),
                      "--wait", "120s")
        self.kube = Kube(self.kubeconfig, build.binary("kubectl"))
        say(f"control plane up in {time.monotonic() - started:.0f}s")
        if keda:
            self.start_keda()
        return self

    def start_keda(self, metrics_host: str = "127.0.0.1") -> Keda:
        """KEDA, its operator's metrics on `metrics_host` (the node's address, for a Prometheus: keda.py)."""
        started = time.monotonic()
        say(f"starting KEDA {build.KEDA_VERSION}")
        self.keda = Keda(self.kube, self.workdir, metrics_host)
        self.keda.install()
        say(f"KEDA ready in {time.monotonic() - started:.0f}s")
        return self.keda

    def stop(self) -> None:
        if self.keda is not None:
            self.keda.stop()
        if self.started_kwokctl:
            try:
                self._kwokctl("delete", "cluster", timeout=120)
            except StackError as exc:
                say(f"kwokctl delete cluster: {exc}")
            self.started_kwokctl = False

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

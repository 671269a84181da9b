"""KEDA on the local control plane: its CRDs, its three processes, and the objects that let the API server
reach them without a cluster network.

In a cluster, the API server reaches KEDA's metrics adapter (the external.metrics.k8s.io APIService) and its
admission webhooks through Services. Here every process runs on 127.0.0.1, and there is no kube-proxy, so
those Services are ExternalName Services pointing at `localhost`, with the processes' real ports: the API
server resolves an ExternalName Service to that name and port, both for an APIService and for a webhook.

KEDA can generate and rotate its certificates (it then writes them to a Secret and restarts); we make them once
with openssl instead: one CA, one certificate carrying every name the three processes are reached by. The CA
goes into the APIService's and the webhook's caBundle; the operator's gRPC metrics service and the adapter
authenticate each other with the same files (ca.crt, tls.crt, tls.key in their --cert-dir).
"""

from __future__ import annotations

import base64
import ipaddress
import os
from pathlib import Path

import yaml

from scripts.stack.errors import say
from scripts.stack.paths import require
from scripts.stack.process import Server, free_port, run
from scripts.stack.waiting import until

from . import build
from .errors import ClusterError
from .kube import Kube

NAMESPACE = "keda"
NAMES = ("keda-operator.keda.svc.cluster.local", "keda-operator.keda.svc", "keda-metrics-apiserver.keda.svc",
         "keda-metrics-apiserver.keda.svc.cluster.local", "keda-admission-webhooks.keda.svc",
         "keda-admission-webhooks.keda.svc.cluster.local", "localhost")


def make_certificates(folder: Path) -> Path:
    """ca.crt, tls.crt and tls.key in `folder` (made once per cluster)."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "tls.crt").exists():
        return folder

    def openssl(*args: str) -> None:
        run([require("openssl", "OpenSSL (Debian: apt-get install openssl)"), *args], cwd=folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=keda-local-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    san = ",".join([*(f"DNS:{name}" for name in NAMES), "IP:127.0.0.1"])
    (folder / "leaf.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n"
                                     "keyUsage=digitalSignature,keyEncipherment\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=keda-operator.keda.svc.cluster.local",
            "-keyout", "tls.key", "-out", "tls.csr")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
            "-extfile", "leaf.ext", "-out", "tls.crt")
    return folder


class KedaProcess(Server):
    """One of KEDA's binaries, run against the control plane with the admin kubeconfig."""

    def __init__(self, name: str, data_dir: Path, port: int, args: list[str], kubeconfig: Path) -> None:
        self.name = name
        super().__init__(data_dir, port)
        self.args = args
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": NAMESPACE,
                    "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE, "WATCH_NAMESPACE": ""}

    def command(self) -> list[str]:
        return [str(build.binary(self.name)), *self.args]


class Keda:
    """KEDA's operator, metrics adapter and admission webhooks, installed into a running control plane.

    The operator's Prometheus metrics (keda_scaler_metrics_value, ...) are served on `metrics_host`: the node's
    address, where a Prometheus finds them through the `keda-operator` Service in KEDA's namespace (its endpoint is
    that address), as it would find KEDA's pods in a cluster."""

    def __init__(self, kube: Kube, workdir: Path, metrics_host: str = "127.0.0.1") -> None:
        self.kube = kube
        self.workdir = workdir
        self.certs = workdir / "keda-certs"
        self.grpc_port, self.adapter_port, self.webhook_port = free_port(), free_port(), free_port()
        self.metrics_host, self.metrics_port = metrics_host, free_port()
        kubeconfig = kube.kubeconfig
        local = "127.0.0.1:{}".format
        self.processes = [
            KedaProcess("operator", workdir, self.grpc_port, [
                f"--metrics-service-bind-address={local(self.grpc_port)}",
                f"--metrics-bind-address={metrics_host}:{self.metrics_port}",
                f"--health-probe-bind-address={local(free_port())}",
                f"--cert-dir={self.certs}", f"--ca-dir={self.certs}", "--enable-cert-rotation=false",
                "--enable-webhook-patching=false", "--enable-apiservice-patching=false", "--leader-elect=false",
                "--zap-log-level=info", "--zap-encoder=console"], kubeconfig),
            KedaProcess("adapter", workdir, self.adapter_port, [
                f"--secure-port={self.adapter_port}", "--bind-address=127.0.0.1", f"--cert-dir={self.certs}",
                f"--tls-cert-file={self.certs / 'tls.crt'}", f"--tls-private-key-file={self.certs / 'tls.key'}",
                f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
                f"--lister-kubeconfig={kubeconfig}", f"--metrics-service-address={local(self.grpc_port)}",
                "--metrics-service-grpc-authority=keda-operator.keda.svc.cluster.local", "--zap-log-level=error",
                # its Prometheus /metrics (on every address: it takes only a port); the default 8080 is web's
                f"--port={free_port()}"],
                kubeconfig),
            KedaProcess("webhooks", workdir, self.webhook_port, [
                f"--port={self.webhook_port}", f"--cert-dir={self.certs}",
                f"--metrics-bind-address={local(free_port())}", f"--health-probe-bind-address={local(free_port())}",
                "--zap-log-level=info", "--zap-encoder=console"], kubeconfig),
        ]

    def install(self) -> None:
        make_certificates(self.certs)
        source = build.module_source("cluster", "github.com/kedacore/keda/v2")
        say("installing KEDA's CRDs")
        crds = sorted((source / "config" / "crd" / "bases").glob("*.yaml"))
        self.kube.apply("\n---\n".join(path.read_text() for path in crds))
        self.kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        for process in self.processes:
            process.spawn()
        for process in self.processes:
            process.wait_open(60)
        self.kube.apply(self._routing(source))
        self.wait_available()

    def _routing(self, source: Path) -> list[dict]:
        ca_bundle = base64.b64encode((self.certs / "ca.crt").read_bytes()).decode()

        def local_service(name: str, port: int) -> dict:
            return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"type": "ExternalName", "externalName": "localhost",
                             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}}

        # KEDA's own RBAC for reading its metrics: the HPA controller's service account may read
        # external.metrics.k8s.io (needed when the controller manager uses per-controller credentials).
        rbac = [doc for name in ("role.yaml", "role_binding.yaml")
                for doc in yaml.safe_load_all((source / "config" / "metrics-server" / name).read_text()) if doc]
        webhooks = yaml.safe_load((source / "config" / "webhooks" / "validation_webhooks.yaml").read_text())
        for hook in webhooks["webhooks"]:
            hook["clientConfig"]["service"]["port"] = self.webhook_port
            hook["clientConfig"]["caBundle"] = ca_bundle
        return [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            *self._metrics_service(),
            local_service("keda-metrics-apiserver", self.adapter_port),
            local_service("keda-admission-webhooks", self.webhook_port),
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
             "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
             "spec": {"service": {"name": "keda-metrics-apiserver", "namespace": NAMESPACE, "port": self.adapter_port},
                      "group": "external.metrics.k8s.io", "version": "v1beta1", "caBundle": ca_bundle,
                      "groupPriorityMinimum": 100, "versionPriority": 100}},
            webhooks,
            *rbac,
        ]

    def _metrics_service(self) -> list[dict]:
        """The operator's metrics as KEDA's chart publishes them: a Service labelled as its operator, port "metrics",
        here with the node's address as its endpoint (a Service cannot point at loopback: then there is none)."""
        if ipaddress.ip_address(self.metrics_host).is_loopback:
            return []
        operator = {"app.kubernetes.io/name": "keda-operator", "app.kubernetes.io/part-of": "keda"}
        port = [{"name": "metrics", "port": self.metrics_port, "protocol": "TCP"}]
        meta = {"name": "keda-operator", "namespace": NAMESPACE, "labels": operator}
        return [{"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": port}},
                {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
                 "subsets": [{"addresses": [{"ip": self.metrics_host}], "ports": port}]}]

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_host}:{self.metrics_port}/metrics"

    def wait_available(self, timeout: float = 90) -> None:
        available: dict = {}

        def is_available() -> bool:
            for process in self.processes:
                if process.exit_code() is not None:
                    raise ClusterError(f"KEDA's {process.name} exited; see {process.log_path}")
            service = self.kube.get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io")
            conditions = {c["type"]: c for c in (service or {}).get("status", {}).get("conditions", [])}
            available.update(conditions.get("Available", {}))
            return available.get("status") == "True"

        until(is_available, timeout, lambda: f"KEDA's metrics APIService to be Available (last: {available})",
              interval=0.5)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=10)


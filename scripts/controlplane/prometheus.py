"""A real Prometheus for the local cluster (Debian's `prometheus` package), set up as prometheus-operator would set it
up from the chart's ServiceMonitors and PrometheusRules: the objects are read back from the API server, each
ServiceMonitor endpoint becomes a scrape job whose targets are the endpoints of the Services it selects (its
namespaces, its label selector, its port name) with the target labels the operator gives (namespace, service, pod,
container, endpoint, job), and the rules are the PrometheusRules' own groups. kube-state-metrics (a process of the
node, kube_state_metrics.py) is scraped as kube-prometheus-stack scrapes it, honouring its labels.

Debian builds its Prometheus without Kubernetes service discovery (kubernetes_sd_configs is not in its config), so
the discovery is ours: Prometheus asks an HTTP service discovery endpoint (http_sd_configs, every 2 s) that
evaluates the ServiceMonitor's selection against the API server at that moment (ServiceMonitorTargets). Everything
else, the scrapes, the rules and the alerts, is Prometheus' own.

    prometheus = Prometheus(folder, kube, extra_targets={"kube-state-metrics": "127.0.0.1:8080"})
    prometheus.configure(namespace)                       # from the ServiceMonitors and PrometheusRules there
    prometheus.start(); prometheus.query("up")

Runs as root on the host: the node's NetworkPolicy controller does not judge what the node itself sends as root
(netpol.py), as a cluster's Prometheus in an admitted namespace is not refused either; the NetworkPolicy test checks
that admission with a pod of its own.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from scripts.stack.errors import StackError
from scripts.stack.process import Server, free_port, version_of

from .errors import ClusterError
from .kube import Kube

PROMETHEUS_INSTALL = "Debian: apt-get install prometheus"
SCRAPE_INTERVAL = "2s"  # the whole loop (scrape, rules, alert) in seconds, for a run of a few minutes
MONITORING = "/apis/monitoring.coreos.com/v1"


def prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise ClusterError(f"'prometheus' is not installed: {PROMETHEUS_INSTALL}")
    return path


def prometheus_version() -> str:
    """"prometheus, version 2.42.0+ds (branch: ...)": its version, or that it is not installed."""
    try:
        return version_of([prometheus_binary(), "--version"])
    except StackError:
        return "(not installed)"


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against an object's labels."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                   "Exists": key in labels, "DoesNotExist": key not in labels}.get(operator)
        if matched is None:
            raise ClusterError(f"unknown selector operator in {expression}")
        if not matched:
            return False
    return True


class ServiceMonitorTargets:
    """What prometheus-operator's scrape job for one endpoint of a ServiceMonitor scrapes, read from the API server
    now: each address of the selected Services' endpoints on the endpoint's port, labelled as the operator labels it."""

    def __init__(self, kube: Kube, monitor: dict, index: int) -> None:
        self.kube, self.monitor, self.index = kube, monitor, index

    def groups(self) -> list[dict]:
        spec, meta = self.monitor["spec"], self.monitor["metadata"]
        endpoint = spec["endpoints"][self.index]
        port, job_label = endpoint["port"], spec.get("jobLabel")
        groups = []
        for namespace in spec.get("namespaceSelector", {}).get("matchNames") or [meta["namespace"]]:
            services = (self.kube.get(f"/api/v1/namespaces/{namespace}/services") or {"items": []})["items"]
            for service in services:
                labels = service["metadata"].get("labels", {})
                if not selects(spec.get("selector", {}), labels):
                    continue
                name = service["metadata"]["name"]
                found = self.kube.get(f"/api/v1/namespaces/{namespace}/endpoints/{name}") or {}
                for subset in found.get("subsets", []):
                    numbers = [p["port"] for p in subset.get("ports", []) if p.get("name") == port]
                    for address in [*subset.get("addresses", []), *subset.get("notReadyAddresses", [])]:
                        target = {"namespace": namespace, "service": name, "endpoint": str(port),
                                  "job": labels.get(job_label, name) if job_label else name}
                        if address.get("targetRef", {}).get("kind") == "Pod":
                            target["pod"] = address["targetRef"]["name"]
                        groups += [{"targets": [f"{address['ip']}:{number}"], "labels": target} for number in numbers]
        return groups


class _Discovery(ThreadingHTTPServer):
    """The HTTP service discovery Prometheus asks: /<job index> answers that job's targets."""

    daemon_threads = True

    def __init__(self, jobs: list[ServiceMonitorTargets]) -> None:
        self.jobs = jobs
        super().__init__(("127.0.0.1", free_port()), _DiscoveryHandler)


class _DiscoveryHandler(BaseHTTPRequestHandler):
    server: _Discovery

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        try:
            body = json.dumps(self.server.jobs[int(self.path.strip("/"))].groups()).encode()
            status = 200
        except Exception as exc:  # the API server away, say: Prometheus keeps the last targets and tries again
            body, status = json.dumps({"error": repr(exc)}).encode(), 503
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def _snake(relabeling: dict) -> dict:
    """A relabeling as the operator's CRD spells it (sourceLabels), as Prometheus' config does (source_labels)."""
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): value for key, value in relabeling.items()}


class Prometheus(Server):
    name = "prometheus"

    def __init__(self, data_dir: Path, kube: Kube, extra_targets: dict[str, str] | None = None) -> None:
        super().__init__(data_dir, free_port())
        self.kube = kube
        self.extra_targets = dict(extra_targets or {})  # job -> host:port, scraped honouring their labels
        self.config_path = self.data_dir / "prometheus.yml"
        self._discovery: _Discovery | None = None

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    def configure(self, *namespaces: str) -> dict:
        """The config: a job per ServiceMonitor endpoint and the PrometheusRules' groups, of `namespaces`."""
        monitors = [m for ns in namespaces for m in self._items(ns, "servicemonitors")]
        rules = [r for ns in namespaces for r in self._items(ns, "prometheusrules")]
        if not monitors:
            raise ClusterError(f"no ServiceMonitor in {namespaces}: is the chart installed with "
                               "metrics.serviceMonitor?")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rule_files = []
        for rule in rules:
            path = self.data_dir / f"rules-{rule['metadata']['namespace']}-{rule['metadata']['name']}.yml"
            path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
            rule_files.append(str(path))
        jobs = [ServiceMonitorTargets(self.kube, monitor, index) for monitor in monitors
                for index in range(len(monitor["spec"]["endpoints"]))]
        self._discovery = _Discovery(jobs)
        threading.Thread(target=self._discovery.serve_forever, daemon=True, name="prometheus-sd").start()
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": rule_files,
            "scrape_configs": [*(self._scrape_job(job, n) for n, job in enumerate(jobs)),
                               *({"job_name": job, "honor_labels": True, "static_configs": [{"targets": [target]}]}
                                 for job, target in self.extra_targets.items())],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        return config

    def _scrape_job(self, job: ServiceMonitorTargets, number: int) -> dict:
        """The scrape config of one ServiceMonitor endpoint: its path, interval and label handling, its targets from
        our discovery."""
        meta, endpoint = job.monitor["metadata"], job.monitor["spec"]["endpoints"][job.index]
        config = {"job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{job.index}",
                  "honor_labels": endpoint.get("honorLabels", False), "metrics_path": endpoint.get("path", "/metrics"),
                  "http_sd_configs": [{"url": f"http://127.0.0.1:{self._discovery.server_port}/{number}",
                                       "refresh_interval": SCRAPE_INTERVAL}],
                  "relabel_configs": [_snake(r) for r in endpoint.get("relabelings", [])],
                  "metric_relabel_configs": [_snake(r) for r in endpoint.get("metricRelabelings", [])]}
        for field, key in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout")):
            if endpoint.get(field):
                config[key] = endpoint[field]
        return config

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
        if self._discovery is not None:
            self._discovery.shutdown()
            self._discovery.server_close()
            self._discovery = None

    def _items(self, namespace: str, plural: str) -> list[dict]:
        return (self.kube.get(f"{MONITORING}/namespaces/{namespace}/{plural}") or {"items": []})["items"]

    def command(self) -> list[str]:
        return [prometheus_binary(), f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.data_dir / 'data'}", f"--web.listen-address={self.host}:{self.port}",
                "--storage.tsdb.retention.time=6h", "--log.level=warn"]

    # -- asking it -------------------------------------------------------------------------------------------

    def _api(self, path: str, **params: Any) -> Any:
        answer = requests.get(f"{self.address}/api/v1/{path}", params=params, timeout=10).json()
        if answer.get("status") != "success":
            raise ClusterError(f"Prometheus refused {path} {params}: {answer}")
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's series: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        return self._api("query", query=expr)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def targets(self) -> list[dict]:
        return self._api("targets", state="active")["activeTargets"]

    def alerts(self) -> list[dict]:
        """The alerts pending or firing now: [{"labels": {...}, "state": "pending"|"firing", ...}]."""
        return self._api("alerts")["alerts"]

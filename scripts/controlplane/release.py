"""The chart, installed with the real helm into the local control plane, against the local stack's Kafka and
FerretDB (the chart's external-server values).

Bitnami's kafka and mongodb charts cannot be downloaded here, and helm refuses to install a chart whose declared
dependencies are missing from charts/, even disabled ones. So the release is made from a copy of the chart
whose charts/ holds placeholders with the declared names and versions (no templates): with kafka.enabled and
mongodb.enabled false, helm renders and installs exactly our own objects, as it would with the real subcharts.
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import yaml

from scripts.stack.errors import say
from scripts.stack.kafka_security import KafkaSecurity
from scripts.stack.paths import ROOT
from scripts.stack.process import Finished, run

from .errors import ClusterError
from .kube import Kube

CHART = ROOT / "helm" / "purchase-system"
NAMESPACE = "purchase"
RELEASE = "shop"
MONGODB_SECRET = "purchase-mongodb"
KAFKA_SECRET = "purchase-kafka-credentials"  # with SASL: each principal's password, as values-sasl.yaml names them


def chart_with_placeholders(folder: Path) -> Path:
    """A copy of the chart in `folder`, its dependencies present as empty placeholder charts."""
    copy = folder / CHART.name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    for dependency in yaml.safe_load((copy / "Chart.yaml").read_text())["dependencies"]:
        placeholder = copy / "charts" / dependency["name"]
        placeholder.mkdir(parents=True)
        (placeholder / "Chart.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v2", "name": dependency["name"], "version": dependency["version"],
            "description": "placeholder: the real chart cannot be downloaded here; disabled in this release"}))
    return copy


def local_values(kafka_bootstrap: str, registry: str, sasl: bool = False) -> dict:
    """Values for the local cluster: our Kafka and FerretDB instead of Bitnami's, our images from `registry`;
    `sasl`: our Kafka wants SCRAM credentials (KAFKA_SECRET holds them).

    The CPU requests are lowered: the node has this machine's two cores, and 8 api pods at the chart's 200m
    (KEDA's maximum) plus web would not fit beside a rolling update's surge. Limits stay the chart's."""
    small = {"requests": {"cpu": "50m", "memory": "64Mi"}}
    kafka_client = {"bootstrapServers": kafka_bootstrap}
    if sasl:
        kafka_client.update(securityProtocol="SASL_PLAINTEXT",
                            sasl={"mechanism": "SCRAM-SHA-512", "existingSecret": KAFKA_SECRET})
    return {
        "imageRegistry": registry,
        "kafka": {"enabled": False},
        "mongodb": {"enabled": False},
        "kafkaClient": kafka_client,
        "externalMongodb": {"existingSecret": MONGODB_SECRET},
        "web": {"replicaCount": 1, "perWorker": {"requests": {"cpuMillicores": 50, "memoryMiB": 64},
                                                 "limits": {"cpuMillicores": 1000, "memoryMiB": 256}}},
        "api": {"resources": small},
    }


def merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merge(merged[key], value) if nested else value
    return merged


class Release:
    """One helm release of the chart in NAMESPACE, with its values written to a file beside the chart copy."""

    def __init__(self, helm: Path, kube: Kube, workdir: Path, name: str = RELEASE) -> None:
        self.helm = helm
        self.kube = kube
        self.workdir = Path(workdir)
        self.name = name
        self.chart = chart_with_placeholders(self.workdir)

    def prepare_namespace(self, mongodb_uri: str, kafka_security: KafkaSecurity | None = None) -> None:
        """The namespace and the Secrets an operator creates first: MongoDB's connection string, and with SASL the
        Kafka principals' passwords (keys web-password, api-password, topics-password, keda-password)."""
        def secret(name: str, data: dict[str, str]) -> dict:
            return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
                    "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}
        objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                   secret(MONGODB_SECRET, {"mongodb-uri": mongodb_uri})]
        if kafka_security is not None:
            objects.append(secret(KAFKA_SECRET, {f"{part}-password": kafka_security.passwords[part]
                                                 for part in ("web", "api", "topics", "keda")}))
        self.kube.apply(objects)

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> Finished:
        return run([str(self.helm), "--kubeconfig", str(self.kube.kubeconfig), "--namespace", NAMESPACE, *args],
                   check=check, timeout=timeout, error=ClusterError)

    def values_file(self, label: str) -> Path:
        """Where the values of an install labelled `label` are written."""
        return self.workdir / f"values-{label}.yaml"

    def upgrade_install(self, values: dict, label: str = "release", timeout: str = "5m",
                        check: bool = True) -> Finished:
        say(f"helm upgrade --install {self.name} (values: {label})")
        self.values_file(label).write_text(yaml.safe_dump(values))
        return self.run("upgrade", "--install", self.name, str(self.chart), "-f", str(self.values_file(label)),
                        "--wait", "--wait-for-jobs", "--timeout", timeout, check=check)

    def uninstall(self, check: bool = True) -> Finished:
        return self.run("uninstall", self.name, "--wait", "--timeout", "2m", check=check)

    def object_name(self, component: str) -> str:
        return f"{self.name}-purchase-system-{component}"

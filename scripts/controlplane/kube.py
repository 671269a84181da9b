"""A small client for the control plane's API server: what the cluster's scripts and the tests read, over HTTPS
with the client certificate from the kubeconfig kwokctl writes. kubectl (pinned, built beside the server)
does everything else."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import requests
import yaml

from scripts.stack.process import Finished, run

from .errors import ClusterError


class Kube:
    def __init__(self, kubeconfig: Path, kubectl: Path) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.kubectl_binary = Path(kubectl)
        config = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server = cluster["server"]
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment would override ours
        self.session.verify = self._file(cluster, "certificate-authority")
        self.session.cert = (self._file(user, "client-certificate"), self._file(user, "client-key"))

    def _file(self, section: dict, name: str) -> str:
        if name in section:
            return section[name]
        path = Path(tempfile.mkdtemp()) / name  # the kubeconfig embeds it (<name>-data)
        path.write_bytes(base64.b64decode(section[f"{name}-data"]))
        return str(path)

    # -- REST --------------------------------------------------------------------------------------------

    def get(self, path: str, **params) -> dict[str, Any] | None:
        """The object or list at `path`, or None when it does not exist."""
        response = self.session.get(self.server + path, params=params, timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def pods(self, namespace: str) -> list[dict]:
        return (self.get(f"/api/v1/namespaces/{namespace}/pods") or {"items": []})["items"]

    # -- kubectl -----------------------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> Finished:
        return run([str(self.kubectl_binary), "--kubeconfig", str(self.kubeconfig), *args], check=check,
                   timeout=120, input=input, error=ClusterError)

    def apply(self, manifests: list[dict] | str) -> None:
        text = manifests if isinstance(manifests, str) else yaml.safe_dump_all(manifests)
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)

"""Tilt against the local cluster: the Docker API it builds with, and the environment it runs in.

Tilt builds through a Docker API. Here that is podman's (`podman system service` on a unix socket of ours,
running with scripts/images.py's settings: runc, lowered ulimits, our plain-HTTP registry). Tilt finds the
registry to push to in the `local-registry-hosting` ConfigMap, which LocalCluster publishes, and the node
pulls from it. Bitnami's images cannot be pulled here, so Tilt deploys the chart against the cluster's own
Kafka and FerretDB (the Tiltfile's --kafka and --mongodb-uri).
"""

from __future__ import annotations

import os
from pathlib import Path

from scripts import images
from scripts.stack.process import Server
from scripts.tools import TILT_ENV, helm_binary, require_tilt

from . import build


class DockerAPI(Server):
    """`podman system service`: a Docker API (v1.41) on a unix socket. Its "port" is unused."""

    name = "podman-service"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, 0)
        self.socket = self.data_dir / "docker.sock"
        self.env = images.podman_env()

    def command(self) -> list[str]:
        return ["podman", "system", "service", "--time=0", f"unix://{self.socket}"]

    def spawn(self) -> None:
        self.socket.unlink(missing_ok=True)
        super().spawn()

    @property
    def address(self) -> str:
        return str(self.socket)

    def listening(self) -> bool:
        return self.socket.exists()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"


def tilt_command(*args: str) -> list[str]:
    return [str(require_tilt()), *args]


def tilt_env(kubeconfig: Path, docker: DockerAPI, home: Path) -> dict[str, str]:
    """Tilt's environment: the cluster, the Docker API (without BuildKit, which podman's API lacks), the images'
    base (the Debian stand-in where Docker Hub is unreachable), helm and kubectl on PATH, and a HOME of its own
    (Tilt keeps its state and settings there)."""
    path = os.pathsep.join([str(helm_binary().parent), str(build.BIN), os.environ.get("PATH", "")])
    return {**os.environ, **TILT_ENV, "KUBECONFIG": str(kubeconfig), "DOCKER_HOST": docker.docker_host,
            "DOCKER_BUILDKIT": "0", "PYTHON_IMAGE": images.base_image().image, "PATH": path, "HOME": str(home)}

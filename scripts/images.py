"""`make images`: the web and api images, built from their Dockerfiles with podman, and the node's pause image.

    python -m scripts.images [--push 127.0.0.1:5000]

The Dockerfiles' base is python:3.11.14-slim-bookworm, from Docker Hub. Where Docker Hub answers, that base is
used. Where it does not (this machine, CI), the build uses a STAND-IN for it, made from Debian's own packages
with mmdebstrap (Debian bookworm's Python 3.11.2, its CA bundle and pip settings from this machine), passed
through the Dockerfiles' PYTHON_IMAGE argument; the Dockerfiles are unchanged. PYTHON_IMAGE in the environment
names another base. The stand-in is cached as a tar under $PURCHASE_CACHE and imported into podman once.

podman runs here with runc and lowered ulimits (crun refuses this machine's hybrid cgroups; raising a limit
needs CAP_SYS_RESOURCE): podman_env() points it at a containers.conf that says so, and at a registries.conf
that lets it push to a local registry over plain HTTP.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.stack.errors import StackError, say
from scripts.stack.paths import CACHE, ROOT
from scripts.stack.process import Finished, run, step

SERVICES = ("web", "api")
REAL_BASE = "docker.io/library/python:3.11.14-slim-bookworm"
STANDIN_BASE = "localhost/python-standin:3.11-bookworm"
STANDIN_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
PAUSE_IMAGE = "purchase-pause:1"
IMAGES_DIR = CACHE / "images"
TAG = yaml.safe_load((ROOT / "helm" / "purchase-system" / "Chart.yaml").read_text())["appVersion"]


def podman_env() -> dict[str, str]:
    """The environment every podman command (and `podman system service`, for Tilt) runs with here."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    containers = IMAGES_DIR / "containers.conf"
    containers.write_text('[engine]\nruntime = "runc"\n\n[containers]\n'
                          'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n')
    registries = IMAGES_DIR / "registries.conf"
    registries.write_text('unqualified-search-registries = []\n\n'
                          '[[registry]]\nlocation = "127.0.0.1"\ninsecure = true\n')
    return {**os.environ, "CONTAINERS_CONF": str(containers), "CONTAINERS_REGISTRIES_CONF": str(registries)}


def podman(*args: str, check: bool = True, timeout: float = 900) -> Finished:
    if shutil.which("podman") is None:
        raise StackError("'podman' is not installed (Debian: apt-get install podman mmdebstrap)")
    return run(["podman", *args], f"podman {' '.join(args[:3])}", check=check, timeout=timeout, env=podman_env())


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


@dataclass(frozen=True)
class Base:
    image: str
    standin: bool

    def describe(self) -> str:
        return (f"{self.image} (a STAND-IN for {REAL_BASE}, built from Debian's packages: Docker Hub is unreachable)"
                if self.standin else self.image)


def base_image() -> Base:
    """PYTHON_IMAGE if set; the real base if podman has it or can pull it; otherwise the Debian stand-in."""
    if os.environ.get("PYTHON_IMAGE"):
        return Base(os.environ["PYTHON_IMAGE"], standin=False)
    if image_exists(REAL_BASE) or podman("pull", "-q", REAL_BASE, check=False, timeout=120).returncode == 0:
        return Base(REAL_BASE, standin=False)
    if not image_exists(STANDIN_BASE):
        tar = IMAGES_DIR / "python-standin-bookworm.tar"
        if tar.is_dir():  # mmdebstrap's output when it was named ".partial": it guesses the format from the name
            shutil.rmtree(tar)
        if not tar.exists():
            if shutil.which("mmdebstrap") is None:
                raise StackError("Docker Hub is unreachable and 'mmdebstrap' is not installed to make a stand-in "
                                 "base (Debian: apt-get install mmdebstrap)")
            partial = tar.with_name(f"{tar.stem}.partial.tar")
            partial.unlink(missing_ok=True)
            hooks = [f"--customize-hook=copy-in {path} {Path(path).parent}/"
                     for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf") if Path(path).exists()]
            step(["mmdebstrap", "--variant=minbase", "--format=tar", f"--include={STANDIN_PACKAGES}", *hooks,
                 "bookworm", str(partial)],
                "making the stand-in Python base from Debian's packages (mmdebstrap, about 90 s)")
            partial.rename(tar)
        podman("import", str(tar), STANDIN_BASE)
    return Base(STANDIN_BASE, standin=True)


def build_service(service: str, base: Base, tag: str = TAG, target: str | None = None) -> str:
    name = f"purchase-{service}:{tag}"
    say(f"building {name} from services/{service}/Dockerfile on {base.describe()}")
    podman("build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base.image}",
           *(["--target", target] if target else []),
           "-f", str(ROOT / "services" / service / "Dockerfile"), "-t", name, str(ROOT))
    return name


def build_pause(base: Base) -> str:
    """The node's sandbox image: it only holds the pod's namespaces, so it sleeps until it is killed."""
    if not image_exists(PAUSE_IMAGE):
        context = IMAGES_DIR / "pause"
        context.mkdir(parents=True, exist_ok=True)
        (context / "Containerfile").write_text(f'FROM {base.image}\nUSER 65535:65535\nCMD ["sleep", "infinity"]\n')
        podman("build", "-t", PAUSE_IMAGE, str(context))
    return PAUSE_IMAGE


def size_mib(name: str) -> float:
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout.strip()) / 2**20


def push(name: str, registry: str) -> str:
    """Push a local image to `registry` (plain HTTP) under the same name; returns its name there."""
    remote = f"{registry}/{name.removeprefix('localhost/')}"
    podman("push", "--tls-verify=false", name, remote)
    return remote


def build_all(base: Base) -> dict[str, str]:
    """web, api and the pause image, built on `base`: their local names."""
    built = {service: build_service(service, base) for service in SERVICES}
    built["pause"] = build_pause(base)
    return built


def push_all(built: dict[str, str], registry: str) -> dict[str, str]:
    """The same, pushed to `registry`: their names there, as a node pulls them."""
    return {key: push(name, registry) for key, name in built.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--push", metavar="REGISTRY", help="also push them to this registry (plain HTTP)")
    args = parser.parse_args(argv)
    try:
        base = base_image()
        say(f"base: {base.describe()}")
        built = build_all(base)
        for name in built.values():
            say(f"  {name}: {size_mib(name):.0f} MiB")
        if args.push:
            for name in push_all(built, args.push).values():
                say(f"  pushed {name}")
    except StackError as exc:
        say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The control plane's binaries, built once with `go build` from the pinned tools modules beside this file.

    python -m scripts.controlplane.build      # build what is missing (about 25 minutes on 2 cores, cold)

Three modules under go/, each with its go.mod and go.sum committed, so every build resolves the same code:
- go/etcd: etcd's server module and a three-line main (the one etcd's own main has).
- go/kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and the node's kubelet and
  kube-proxy of one Kubernetes release, and kwok/kwokctl. Kubernetes' go.mod points its staging modules at
  folders of its own repository, and Go
  ignores a dependency's replace directives, so ours names the published modules of the same release.
- go/keda: KEDA's operator, metrics adapter and admission webhooks (its go.mod's one replace and one exclude).
- go/coredns: CoreDNS, the real node's cluster DNS (its kubernetes plugin answers for the Services).

Binaries land in $PURCHASE_CACHE/controlplane-<versions>/bin; a group is rebuilt only when its go.mod or go.sum
changes. The version strings Kubernetes and KEDA report are stamped in with -ldflags -X: without them the API
server says v0.0.0-master and KEDA cannot parse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.stack.process import CACHE, StackError, require, say

KUBERNETES_VERSION = "v1.36.3"
KEDA_VERSION = "v2.21.0"
ETCD_VERSION = "v3.6.16"
COREDNS_VERSION = "v1.15.0"
KWOK_VERSION = "v0.8.0"
MODULES = Path(__file__).resolve().parent / "go"
BIN = CACHE / f"controlplane-k8s{KUBERNETES_VERSION}-keda{KEDA_VERSION}" / "bin"


def _kubernetes_ldflags() -> str:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    stamps = {"gitVersion": KUBERNETES_VERSION, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    return " ".join(f"-X {package}.{name}={value}" for package in
                    ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version") for name, value in stamps.items())


@dataclass(frozen=True)
class Group:
    """One tools module and the binaries it builds."""

    module: str
    binaries: tuple[str, ...]
    packages: tuple[str, ...] = ("tool",)
    ldflags: str = ""
    minutes: int = 1  # cold build time on 2 cores, for the progress message

    @property
    def folder(self) -> Path:
        return MODULES / self.module

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name in ("go.mod", "go.sum"):
            digest.update((self.folder / name).read_bytes())
        digest.update(self.ldflags.encode())
        return digest.hexdigest()

    def stamp(self) -> Path:
        return BIN / f".{self.module}.built"

    def built(self) -> bool:
        stamp = self.stamp()
        return (stamp.exists() and stamp.read_text() == self.fingerprint()
                and all((BIN / name).exists() for name in self.binaries))


GROUPS = (
    Group("etcd", ("etcd",), packages=(".",), minutes=2),
    Group("kubernetes", ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet",
                         "kube-proxy", "kwok", "kwokctl"),
          ldflags=_kubernetes_ldflags(), minutes=14),
    Group("keda", ("operator", "adapter", "webhooks"),
          ldflags=f"-X github.com/kedacore/keda/v2/version.Version={KEDA_VERSION.lstrip('v')}"
                  f" -X github.com/kedacore/keda/v2/version.GitCommit={KEDA_VERSION}", minutes=12),
    Group("coredns", ("coredns",), minutes=4),
)


def binary(name: str) -> Path:
    return BIN / name


def module_source(module: str, path: str) -> Path:
    """Where the Go module cache holds `path`, a dependency of our tools module `module` (at its pinned version):
    its YAML (CRDs, webhook configuration, kwok's stages) is read from there. The build downloaded it; if the
    module cache was cleaned since (or the binaries came from elsewhere), it is downloaded again, as go.sum pins it."""
    listing = subprocess.run([require("go"), "mod", "download", "-json", path], capture_output=True, text=True,
                             cwd=MODULES / module, env={**os.environ, "GOFLAGS": "-mod=readonly"})
    try:
        source = json.loads(listing.stdout).get("Dir", "") if listing.returncode == 0 else ""
    except json.JSONDecodeError:
        source = ""
    if not source:
        raise StackError(f"could not download {path}, pinned in {MODULES / module / 'go.mod'}: "
                         f"{listing.stderr or listing.stdout}")
    return Path(source)


def missing() -> list[str]:
    return [name for group in GROUPS if not group.built() for name in group.binaries]


def _build(group: Group, go: str) -> None:
    say(f"building {', '.join(group.binaries)} from {group.folder.relative_to(MODULES.parent.parent.parent)} "
        f"(about {group.minutes} min cold on 2 cores; cached afterwards)")
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    command = [go, "build", "-trimpath", "-ldflags", group.ldflags, "-o", f"{BIN}/", *group.packages]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=group.folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:  # go prints "go: downloading ..." while it fetches modules: show that it moves
        output.append(line.rstrip())
        if line.startswith("go: downloading") and len(output) % 50 == 1:
            say(f"  {line.strip()} ({time.monotonic() - started:.0f}s)")
    if process.wait() != 0:
        tail = "\n".join(output[-25:])
        raise StackError(f"building the {group.module} binaries failed (exit {process.returncode}):\n{tail}")
    group.stamp().write_text(group.fingerprint())
    say(f"built {', '.join(group.binaries)} in {time.monotonic() - started:.0f}s")


def build() -> Path:
    """Build every missing binary; returns the folder holding them all."""
    pending = [group for group in GROUPS if not group.built()]
    if pending:
        go = require("go")
        BIN.mkdir(parents=True, exist_ok=True)
        for group in pending:
            _build(group, go)
    return BIN


def main() -> int:
    try:
        say(f"control plane binaries: {build()}")
        return 0
    except StackError as exc:
        say(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())

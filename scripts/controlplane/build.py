"""The control plane's and the node's binaries, built once with `go build` from the Go module proxy.

    build()      # what is missing, two at a time (scripts/fetch.py runs the groups beside the other builds)

Four tools modules under go/, each with its go.mod and go.sum committed, so every build resolves the same code:
- go/cluster: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, and the node's kubelet and
  kube-proxy of one Kubernetes release; kwokctl (it launches the control plane; kwok's own controller, which fakes
  nodes, is not built: the node is real); and KEDA's operator, metrics adapter and admission webhooks. One module
  and one `go build`: what they share (client-go, the API types, the API server library, gRPC; about 1,100 of
  KEDA's 3,450 packages) is compiled once, at one version. Kubernetes' go.mod points its staging modules at
  folders of its own repository, and Go ignores a dependency's replace directives, so ours names the published
  modules of the same release; it repeats KEDA's one replace and one exclude for the same reason.
- go/etcd: etcd's server module and a three-line main (the one etcd's own main has). Apart: KEDA's etcd scaler asks
  for etcd's v3.7 client, and this server is v3.6.
- go/coredns: CoreDNS, the real node's cluster DNS (its kubernetes plugin answers for the Services). Apart: it asks
  for client-go v0.37, newer than the release's v0.36.
- go/kube-state-metrics: the cluster's objects as metrics, for the real Prometheus of the monitoring test. Apart:
  v2.19.1 does not build with client-go v0.36 (its store lacks the Bookmark method v0.36 asks for).
And one program built from its own module source with our patch (patches/): kube-network-policies, the node's
NetworkPolicy controller.

Binaries land in $PURCHASE_CACHE/controlplane-<versions>/bin; a group is rebuilt only when its go.mod, go.sum (or
patch) changes. The version strings Kubernetes and KEDA report are stamped in with -ldflags -X: without them the API
server says v0.0.0-master and KEDA cannot parse it (a -X naming a package a binary lacks is ignored, so one set of
flags serves every binary of go/cluster). Builds run two at a time: on 2 cores one build's downloads and links
overlap the other's compiles (measured: docs/kubernetes.md).
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from scripts.stack import gomodule
from scripts.stack.errors import say
from scripts.stack.paths import CACHE, remove_tree

KUBERNETES_VERSION = "v1.36.3"
KEDA_VERSION = "v2.21.0"
ETCD_VERSION = "v3.6.16"
COREDNS_VERSION = "v1.15.0"
KWOK_VERSION = "v0.8.0"
NETWORK_POLICIES_MODULE = "sigs.k8s.io/kube-network-policies"
NETWORK_POLICIES_VERSION = "v0.8.0"
KUBE_STATE_METRICS_VERSION = "v2.19.1"  # pinned in go/kube-state-metrics/go.mod
MODULES = Path(__file__).resolve().parent / "go"
PATCHES = Path(__file__).resolve().parent / "patches"
BIN = CACHE / f"controlplane-k8s{KUBERNETES_VERSION}-keda{KEDA_VERSION}" / "bin"


def _kubernetes_ldflags() -> str:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    stamps = {"gitVersion": KUBERNETES_VERSION, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    return " ".join(f"-X {package}.{name}={value}" for package in
                    ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version") for name, value in stamps.items())


@dataclass(frozen=True)
class Group:
    """One tools module and the binaries it builds (named by their packages' last elements)."""

    module: str
    binaries: tuple[str, ...]
    packages: tuple[str, ...] = ("tool",)
    ldflags: str = ""

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

    def build(self) -> None:
        gomodule.build(self.module, self.folder, f"{BIN}/", *self.packages, ldflags=self.ldflags, CGO_ENABLED="0")
        self.stamp().write_text(self.fingerprint())


@dataclass(frozen=True)
class PatchedProgram(Group):
    """A program built from its own module source (its go.mod and go.sum) with a patch of ours applied first."""

    version: str = ""
    patch: Path | None = None

    @property
    def folder(self) -> Path:
        return CACHE / f"{self.binaries[0]}-{self.version}-src"

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.module}@{self.version}".encode() + self.patch.read_bytes()).hexdigest()

    def stamp(self) -> Path:
        return BIN / f".{self.binaries[0]}.built"

    def build(self) -> None:
        gomodule.patched_copy(self.module, self.version, self.folder, self.patch)
        try:
            gomodule.build(self.binaries[0], self.folder, BIN / self.binaries[0], *self.packages, CGO_ENABLED="0")
        finally:
            remove_tree(self.folder)
        self.stamp().write_text(self.fingerprint())


KUBERNETES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy")
KEDA = ("operator", "adapter", "webhooks")
GROUPS = (
    Group("cluster", (*KUBERNETES, "kwokctl", *KEDA),
          packages=(*(f"k8s.io/kubernetes/cmd/{name}" for name in KUBERNETES), "sigs.k8s.io/kwok/cmd/kwokctl",
                    *(f"github.com/kedacore/keda/v2/cmd/{name}" for name in KEDA)),
          ldflags=f"{_kubernetes_ldflags()} -X github.com/kedacore/keda/v2/version.Version={KEDA_VERSION.lstrip('v')}"
                  f" -X github.com/kedacore/keda/v2/version.GitCommit={KEDA_VERSION}"),
    Group("coredns", ("coredns",)),
    Group("kube-state-metrics", ("kube-state-metrics",)),
    PatchedProgram(NETWORK_POLICIES_MODULE, ("kube-network-policies",), packages=("./cmd",),
                   version=NETWORK_POLICIES_VERSION,
                   patch=PATCHES / f"kube-network-policies-{NETWORK_POLICIES_VERSION}.patch"),
    Group("etcd", ("etcd",), packages=(".",)),
)  # longest first: two at a time, the long ones start first


def binary(name: str) -> Path:
    return BIN / name


def module_source(module: str, path: str) -> Path:
    """Where the Go module cache holds `path`, a dependency of our tools module `module` (at its pinned version):
    its YAML (CRDs, webhook configuration) is read from there. The build downloaded it; if the module cache was
    cleaned since (or the binaries came from elsewhere), it is downloaded again, as go.sum pins it."""
    return gomodule.module_source(path, within=MODULES / module)


def missing() -> list[str]:
    return [name for group in GROUPS if not group.built() for name in group.binaries]


def build(parallel: int = 2) -> Path:
    """Build every missing binary, `parallel` builds at a time; returns the folder holding them all."""
    pending = [group for group in GROUPS if not group.built()]
    if pending:
        BIN.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with ThreadPoolExecutor(parallel, thread_name_prefix="go-build") as pool:
            for done in [pool.submit(group.build) for group in pending]:
                done.result()  # the first failure, once the others have finished
        say(f"built {', '.join(name for group in pending for name in group.binaries)} in "
            f"{time.monotonic() - started:.0f}s, {parallel} at a time")
    return BIN


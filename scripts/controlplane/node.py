"""A real Kubernetes node on this machine: containerd and runc run the pods' containers, the kubelet (built
from the same Kubernetes module as the control plane) drives them, kube-proxy programs the Services, CoreDNS
answers the cluster's names, and a local registry holds the images.

    registry   Debian's docker-registry on 127.0.0.1:<port>; the node pulls the images from it
    containerd Debian's containerd 1.6 with its CRI plugin, runc, the CNI plugins (network.py's bridge)
    kubelet    registers the node Ready, runs every pod: probes, restarts, preStop, grace periods, Job status,
               env and volumes; serves logs, exec and port-forward on the node address to the API server
    kube-proxy iptables mode: a Service's ClusterIP reaches its ready pods
    kube-network-policies  enforces the NetworkPolicies (netpol.py); the CNI bridge enforces none
    CoreDNS    on the node address, port 53: <service>.<namespace>.svc.cluster.local for the pods

Settings this machine needs, each for a reason (see ../shared/real-node.md):
- containerd's `restrict_oom_score_adj`: root here lacks CAP_SYS_RESOURCE, and runc fails to set the
  oom_score_adj the kubelet asks for (-998) without it;
- the cgroupfs driver on the host's cgroup v1 hierarchies (no systemd here), `failCgroupV1: false`;
- a pause image of our own (scripts/images.py): registry.k8s.io cannot be reached.
Root only. Everything it makes lives under its folder, the bridge and the pods' namespaces; stop() removes it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from scripts.stack.errors import StackError, TimedOut, say
from scripts.stack.paths import require
from scripts.stack.process import Finished, Server, free_port, run, version_of
from scripts.stack.waiting import until

from . import build
from .errors import ClusterError
from .kube import Kube
from .netpol import NetworkPolicyController
from .network import BRIDGE, GATEWAY, POD_RANGE, SERVICE_RANGE, NodeNetwork

NODE_NAME = "purchase-node"
CLUSTER_DOMAIN = "cluster.local"


def require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError("the real node (containerd, the kubelet, kube-proxy, the pods' bridge) needs root")


def runtime_versions() -> str:
    """containerd's and runc's versions, as installed (for the test summary)."""
    def version(tool: str) -> str:
        try:
            return version_of([_require(tool), "--version"])
        except StackError:
            return "(not installed)"
    return f"containerd {version('containerd')}, runc {version('runc')}"


class Registry(Server):
    """Debian's docker-registry (the CNCF distribution registry), plain HTTP on loopback."""

    name = "registry"

    def prepare(self) -> None:
        config = {"version": 0.1, "log": {"level": "warn"},
                  "storage": {"filesystem": {"rootdirectory": str(self.data_dir / "storage")},
                              "delete": {"enabled": True}},
                  "http": {"addr": self.address}}
        (self.data_dir / "config.yml").write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [_require("docker-registry"), "serve", str(self.data_dir / "config.yml")]


NODE_PACKAGES = ("Debian: apt-get install containerd runc containernetworking-plugins docker-registry podman "
                 "mmdebstrap iptables")


def _require(tool: str) -> str:
    return require(tool, NODE_PACKAGES)


class Containerd(Server):
    """containerd with a root, state and socket of its own. Its "port" is the CRI streaming server's."""

    name = "containerd"

    def __init__(self, data_dir: Path, network: NodeNetwork, pause_image: str, registry: str) -> None:
        super().__init__(data_dir, free_port())
        self.network, self.pause_image, self.registry = network, pause_image, registry
        self.socket = self.data_dir / "containerd.sock"

    def prepare(self) -> None:
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{self.data_dir / 'root'}"
state = "{self.data_dir / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{self.pause_image}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "{self.port}"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "{_require('runc')}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{self.network.cni_conf_dir}"
  [{cri}.registry.mirrors."{self.registry}"]
    endpoint = ["http://{self.registry}"]
"""
        (self.data_dir / "config.toml").write_text(config)

    def command(self) -> list[str]:
        return [_require("containerd"), "--config", str(self.data_dir / "config.toml")]

    @property
    def address(self) -> str:
        return str(self.socket)

    def listening(self) -> bool:
        return self.socket.exists()

    def ctr(self, *args: str) -> Finished:
        return run([_require("ctr"), "--address", str(self.socket), "--namespace", "k8s.io", *args], check=False,
                   timeout=60)

    def tasks(self) -> list[str]:
        """The ids of the containers running (pods' sandboxes included)."""
        return self.ctr("tasks", "list", "--quiet").stdout.split()

    def pid(self, container: str) -> int:
        """The host's process id of a container's first process."""
        for line in self.ctr("tasks", "list").stdout.splitlines()[1:]:
            task, pid, *_ = line.split()
            if task == container:
                return int(pid)
        raise LookupError(f"no running container {container}")

    def kill_containers(self) -> None:
        """Stop whatever containers are left (the kubelet normally stops them first)."""
        tasks = self.tasks()
        for task in tasks:
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task)
        deadline = time.monotonic() + 10
        for task in tasks:
            while self.ctr("tasks", "delete", task).returncode != 0 and time.monotonic() < deadline:
                time.sleep(0.2)


class Kubelet(Server):
    """The kubelet: its API on the node address (the API server reaches it there for logs, exec and
    port-forward, authenticating with the cluster CA's client certificate), its healthz on loopback."""

    name = "kubelet"

    def __init__(self, data_dir: Path, kube: Kube, containerd: Containerd, ca_file: Path) -> None:
        super().__init__(data_dir, free_port())
        self.kube, self.containerd, self.ca_file = kube, containerd, ca_file
        self.api_port = free_port()

    def prepare(self) -> None:
        (self.data_dir / "resolv.conf").write_text("")  # no search domains of this machine's in the pods
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": GATEWAY, "port": self.api_port, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": self.port,
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self.ca_file)}},
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.containerd.socket}",
            "cgroupDriver": "cgroupfs", "failCgroupV1": False, "failSwapOn": False,
            "clusterDNS": [GATEWAY], "clusterDomain": CLUSTER_DOMAIN,
            "resolvConf": str(self.data_dir / "resolv.conf"),
            "podLogsDir": str(self.data_dir / "pod-logs"),
            "volumePluginDir": str(self.data_dir / "volume-plugins"),
            "enforceNodeAllocatable": [], "localStorageCapacityIsolation": False,
            # This machine's disk may be fuller than a node's usual thresholds: evict nothing for it.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "0%", "imagefs.available": "0%",
                             "nodefs.inodesFree": "0%", "imagefs.inodesFree": "0%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False, "rotateCertificates": False,
            "nodeStatusUpdateFrequency": "5s", "syncFrequency": "10s",
        }
        (self.data_dir / "config.yaml").write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [str(build.binary("kubelet")), "--config", str(self.data_dir / "config.yaml"),
                "--kubeconfig", str(self.kube.kubeconfig), "--root-dir", str(self.data_dir / "root"),
                "--cert-dir", str(self.data_dir / "pki"), "--hostname-override", NODE_NAME,
                "--node-ip", GATEWAY, "--v", "1"]


class KubeProxy(Server):
    name = "kube-proxy"

    def __init__(self, data_dir: Path, kube: Kube) -> None:
        super().__init__(data_dir, free_port())
        self.kube = kube

    def prepare(self) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(self.kube.kubeconfig)},
            "mode": "iptables", "clusterCIDR": str(POD_RANGE), "hostnameOverride": NODE_NAME,
            "bindAddress": GATEWAY, "healthzBindAddress": f"127.0.0.1:{self.port}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            "conntrack": {"maxPerCore": 0},  # leave the host's conntrack table size alone
        }
        (self.data_dir / "config.yaml").write_text(yaml.safe_dump(config))

    def command(self) -> list[str]:
        return [str(build.binary("kube-proxy")), "--config", str(self.data_dir / "config.yaml"), "--v", "1"]

    @staticmethod
    def clean_up() -> None:
        """Remove kube-proxy's iptables chains and rules (its own --cleanup)."""
        run([str(build.binary("kube-proxy")), "--cleanup"], check=False, timeout=60)


class CoreDNS(Server):
    """CoreDNS on the node address: the cluster's names from the API server, nothing else (every other name is
    refused, so no query is ever forwarded off this machine)."""

    name = "coredns"

    def __init__(self, data_dir: Path, kube: Kube) -> None:
        super().__init__(data_dir, 53, GATEWAY)
        self.kube = kube

    def prepare(self) -> None:
        reverse = ".".join(reversed(str(SERVICE_RANGE.network_address).split(".")[:3])) + ".in-addr.arpa"
        (self.data_dir / "Corefile").write_text(
            f"{CLUSTER_DOMAIN}:53 {reverse}:53 {{\n"
            f"    bind {GATEWAY}\n"
            f"    kubernetes {CLUSTER_DOMAIN} {reverse} {{\n"
            f"        kubeconfig {self.kube.kubeconfig}\n"
            "        pods insecure\n"
            "        ttl 5\n"
            "    }\n"
            "    errors\n"
            "}\n")

    def command(self) -> list[str]:
        return [str(build.binary("coredns")), "-conf", str(self.data_dir / "Corefile")]


class Node:
    """The network, containerd, the kubelet, kube-proxy and CoreDNS, joined to `kube`'s control plane."""

    def __init__(self, workdir: Path, kube: Kube, ca_file: Path, pause_image: str, registry: str) -> None:
        require_root()
        self.workdir = Path(workdir)
        self.kube = kube
        self.network = NodeNetwork(self.workdir / "network")
        self.containerd = Containerd(self.workdir / "containerd", self.network, pause_image, registry)
        self.kubelet = Kubelet(self.workdir / "kubelet", kube, self.containerd, ca_file)
        self.kube_proxy = KubeProxy(self.workdir / "kube-proxy", kube)
        self.coredns = CoreDNS(self.workdir / "coredns", kube)
        self.network_policies = NetworkPolicyController(self.workdir / "netpol", kube, NODE_NAME)
        self.started: list[Server] = []

    def start(self) -> Node:
        say(f"starting the node {NODE_NAME}: bridge {BRIDGE} ({GATEWAY}), containerd, the kubelet, kube-proxy, "
            f"{NetworkPolicyController.version()}, CoreDNS")
        started = time.monotonic()
        KubeProxy.clean_up()  # a killed run's rules
        NetworkPolicyController.stop_leftovers()
        self.network.start()
        for server in (self.containerd, self.kubelet, self.kube_proxy, self.network_policies, self.coredns):
            self.started.append(server)
            server.start(timeout=60)
        self._wait_ready(120)
        say(f"node {NODE_NAME} Ready in {time.monotonic() - started:.0f}s")
        return self

    def _wait_ready(self, timeout: float) -> None:
        ready: dict = {}

        def is_ready() -> bool:
            node = self.kube.get(f"/api/v1/nodes/{NODE_NAME}") or {}
            ready.update(next((c for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"), {}))
            return ready.get("status") == "True"

        until(is_ready, timeout, lambda: f"node {NODE_NAME} to be Ready (last: {ready})", self.kubelet, interval=0.5)

    def remove_pods(self, timeout: float = 60) -> None:
        """Delete every pod on the node at once and wait for the kubelet to stop them (their network too)."""
        selector = f"spec.nodeName={NODE_NAME}"
        self.kube.kubectl("delete", "pods", "--all-namespaces", "--field-selector", selector,
                          "--grace-period=1", "--wait=false", check=False)
        try:
            until(lambda: not (self.kube.get("/api/v1/pods", fieldSelector=selector) or {"items": []})["items"],
                  timeout, "the node's pods to be gone", interval=0.5)
        except TimedOut as exc:
            say(f"{exc}; stopping the node anyway")

    def stop(self) -> None:
        if self.kubelet in self.started and self.kubelet.process.poll() is None:
            try:
                self.remove_pods()
            except (RuntimeError, OSError) as exc:
                say(f"removing the node's pods: {exc}")
        for server in reversed(self.started):
            if server is self.containerd:
                self.containerd.kill_containers()
            server.stop()
        self.started.clear()
        _unmount_below(self.workdir)
        KubeProxy.clean_up()
        NetworkPolicyController.stop_leftovers()
        self.network.stop()


def _unmount_below(folder: Path) -> None:
    """Unmount what containerd and the kubelet left mounted under `folder` (deepest first)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(folder) + "/")), key=len, reverse=True):
        run(["umount", "-l", mount], check=False)


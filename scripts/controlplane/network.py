"""The node's network: one Linux bridge on this machine for the pods, and the rules that keep every packet here.

    bridge purchase0, 10.244.0.1/24 (the node's address, and where Kafka, FerretDB and CoreDNS listen)
      pods:      10.244.0.0/24, one network namespace each (made by containerd, addressed by CNI's host-local)
      Services:  10.96.0.0/24, routed to the bridge, rewritten to pod addresses by kube-proxy

Every address lives on that bridge or in the pods' network namespaces, which the node creates and removes.
Nothing leaves the machine:
- the Service range is routed to the bridge (a Service address with no ready endpoint is not rewritten by
  kube-proxy, and would otherwise follow the default route out);
- forwarding (which kube-proxy's rewritten packets need) is allowed from the bridge to the bridge only: a chain of
  ours, first in FORWARD, drops every other forwarded packet, from the pods or towards them;
- CNI does no masquerading, so no pod packet could be made to look like this machine's.

Root only: this is the host's network. start() removes a bridge or chain that a killed run left; stop() removes
what start() made and puts back the two kernel settings it changed.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from pathlib import Path

from scripts.stack.process import Finished, run

from .errors import ClusterError

BRIDGE = "purchase0"
POD_RANGE = ipaddress.ip_network("10.244.0.0/24")
SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/24")
GATEWAY = str(POD_RANGE[1])  # the bridge's address: the node's IP, and the local stack's from the pods' side
CHAIN = "PURCHASE-NODE-FORWARD"
# Forwarding, for kube-proxy's rewritten packets; bridged packets through iptables, so a pod that reaches a
# Service backed by a pod on the same bridge gets its answer back through kube-proxy's connection tracking.
SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}


def _run(*args: str, check: bool = True) -> Finished:
    return run(list(args), " ".join(args[:4]), check=check, error=ClusterError)


class NodeNetwork:
    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.saved_sysctls: dict[str, str] = {}

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "cni"

    @property
    def ipam_dir(self) -> Path:
        return self.workdir / "ipam"

    def start(self) -> NodeNetwork:
        self.stop_leftovers()
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{GATEWAY}/{POD_RANGE.prefixlen}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        _run("ip", "route", "add", str(SERVICE_RANGE), "dev", BRIDGE)
        _run("iptables", "-w", "-N", CHAIN)
        _run("iptables", "-w", "-A", CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "RETURN")
        _run("iptables", "-w", "-A", CHAIN, "-i", BRIDGE, "-j", "DROP")
        _run("iptables", "-w", "-A", CHAIN, "-o", BRIDGE, "-j", "DROP")
        _run("iptables", "-w", "-I", "FORWARD", "1", "-j", CHAIN)
        for key, value in SYSCTLS.items():
            path = Path("/proc/sys") / key
            if not path.exists():
                raise ClusterError(f"{path} is missing: the kernel needs IP forwarding and bridge netfilter "
                                 "(modprobe br_netfilter) for a node's Services")
            self.saved_sysctls[key] = path.read_text().strip()
            path.write_text(value)
        self._write_cni_config()
        return self

    def _write_cni_config(self) -> None:
        self.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        self.ipam_dir.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "0.4.0", "name": "purchase",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
                 "ipam": {"type": "host-local", "dataDir": str(self.ipam_dir),
                          "ranges": [[{"subnet": str(POD_RANGE), "gateway": GATEWAY}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (self.cni_conf_dir / "10-purchase.conflist").write_text(json.dumps(conflist, indent=2))

    def stop(self) -> None:
        for key, value in self.saved_sysctls.items():
            (Path("/proc/sys") / key).write_text(value)
        self.saved_sysctls.clear()
        self.stop_leftovers()

    @staticmethod
    def stop_leftovers() -> None:
        """Remove the bridge, its route, our chain and the kubelet's and kube-proxy's KUBE-* chains, whoever made
        them (a run that was killed)."""
        for table in ("filter", "nat", "mangle"):
            _remove_kube_chains(table)
        while _run("iptables", "-w", "-D", "FORWARD", "-j", CHAIN, check=False).returncode == 0:
            pass
        _run("iptables", "-w", "-F", CHAIN, check=False)
        _run("iptables", "-w", "-X", CHAIN, check=False)
        _run("ip", "link", "delete", BRIDGE, check=False)  # takes its address and the Service route with it


def _remove_kube_chains(table: str) -> None:
    """The jumps to KUBE-* chains from the built-in chains, then those chains (made by the kubelet and kube-proxy;
    kube-proxy's own --cleanup leaves the kubelet's)."""
    rules = _run("iptables", "-w", "-t", table, "-S", check=False).stdout.splitlines()
    for rule in rules:
        words = shlex.split(rule)
        if words[:1] == ["-A"] and not words[1].startswith("KUBE-") and "-j" in words \
                and words[words.index("-j") + 1].startswith("KUBE-"):
            _run("iptables", "-w", "-t", table, "-D", *words[1:], check=False)
    chains = [rule.split()[1] for rule in rules if rule.startswith("-N KUBE-")]
    for chain in chains:
        _run("iptables", "-w", "-t", table, "-F", chain, check=False)
    for chain in chains:
        _run("iptables", "-w", "-t", table, "-X", chain, check=False)

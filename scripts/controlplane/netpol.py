"""The node's NetworkPolicy controller: kube-network-policies, a process of the node beside the kubelet and
kube-proxy, so the chart's NetworkPolicies are enforced here (the CNI bridge enforces nothing).

It watches the cluster's NetworkPolicies, namespaces and pods through the API server, and puts a table of its own in
the host's nftables (`inet kube-network-policies`): the first packet of each connection to or from a pod that a policy
selects goes to an nfqueue, where the controller accepts or drops it as the policies say; established connections
pass in the kernel. Traffic the node itself makes as root (the kubelet's probes, and the tests' own requests from the
host) is not judged, as in kube-network-policies' own DaemonSet. Built from its module source with our patch
(patches/, build.py). Root only: it is the host's firewall. Stopped with SIGINT, it removes its table; stop_leftovers()
removes the one a killed run left.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from scripts.stack.paths import require
from scripts.stack.process import Server, free_port, run

from . import build
from .kube import Kube

TABLE = ("inet", "kube-network-policies")


class NetworkPolicyController(Server):
    name = "kube-network-policies"
    stop_signal = signal.SIGINT  # its signal handler: on SIGTERM it would die without removing its table

    def __init__(self, data_dir: Path, kube: Kube, node_name: str) -> None:
        super().__init__(data_dir, free_port())  # its metrics port: it listens once it has started
        self.kube, self.node_name = kube, node_name
        self.env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}

    def command(self) -> list[str]:
        return [str(build.binary("kube-network-policies")), f"--hostname-override={self.node_name}",
                f"--metrics-bind-address=127.0.0.1:{self.port}",
                "--disable-nri",  # containerd 1.6 has no NRI: pods' addresses come from the API server
                "--netfilter-bug-1766-fix=false",  # the DNS race it works around is fixed in kernels 6.12+
                "--v=1"]

    @staticmethod
    def stop_leftovers() -> None:
        """Remove the controller's table, if a killed run left it (with no controller, its queue drops packets)."""
        run([require("nft"), "delete", "table", *TABLE], check=False)

    @staticmethod
    def version() -> str:
        return f"kube-network-policies {build.NETWORK_POLICIES_VERSION}"

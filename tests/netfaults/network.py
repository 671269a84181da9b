"""Test hosts with a network of their own: network namespaces on one bridge, and the faults made in them.

    network = TestNetwork()                 # bridge pnfbr0, 10.250.0.1/24 for this (the test's) side
    web = network.host("web")               # namespace pnf-web, 10.250.0.2 on its eth0
    web.cut_off(broker.address)             # silent: DROP both ways, no RST
    web.heal()
    network.close()                         # every namespace (and whatever runs in it) and the bridge

Every address is on the bridge, which has no uplink, and no namespace has a route beyond its /24: nothing
leaves the machine. Faults are iptables rules inside a namespace (DROP, or `statistic` for random loss), so
they touch only that host's traffic. Root is needed (ip netns, iptables). A run that died leaves namespaces
behind: a new TestNetwork removes every `pnf-` namespace and the bridge first.
"""

from __future__ import annotations

import os
import signal
import subprocess

PREFIX = "pnf"
BRIDGE = f"{PREFIX}br0"
SUBNET = "10.250.0"


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


class Host:
    def __init__(self, name: str, address: str) -> None:
        self.name, self.address = name, address
        self.netns = f"{PREFIX}-{name}"

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.netns, *command, check=check)

    def iptables(self, *rule: str) -> None:
        self.run("iptables", "-w", *rule)

    def cut_off(self, *peers: str) -> None:
        """Silently drop every packet between this host and each peer, both ways (no RST, no ICMP)."""
        for peer in peers:
            self.iptables("-A", "INPUT", "-s", peer, "-j", "DROP")
            self.iptables("-A", "OUTPUT", "-d", peer, "-j", "DROP")

    def lose(self, fraction: float, *peers: str) -> None:
        """Drop this share of the packets this host sends to each peer, at random."""
        for peer in peers:
            self.iptables("-A", "OUTPUT", "-d", peer, "-m", "statistic", "--mode", "random",
                          "--probability", str(fraction), "-j", "DROP")

    def redirect(self, peers: list[str], port: int, unless_mark: int) -> None:
        """New TCP connections to the peers go to a local port instead (a relay, whose own connections carry
        `unless_mark` and go straight through)."""
        for peer in peers:
            self.iptables("-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", peer, "-m", "mark", "!", "--mark",
                          hex(unless_mark), "-j", "REDIRECT", "--to-ports", str(port))

    def heal(self) -> None:
        """Every fault rule gone: the filter and nat tables as they were made."""
        for table in ("filter", "nat"):
            self.iptables("-t", table, "-F")

    def rules(self) -> str:
        return self.run("iptables-save").stdout


class TestNetwork:
    __test__ = False  # a helper, not a pytest class

    def __init__(self) -> None:
        remove_leftovers()
        self.hosts: dict[str, Host] = {}
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        self.address = f"{SUBNET}.1"  # the test's own side: it sends the traffic and checks the stores

    def host(self, name: str) -> Host:
        host = Host(name, f"{SUBNET}.{len(self.hosts) + 2}")
        outside = f"{PREFIX}v-{name}"[:15]
        sh("ip", "netns", "add", host.netns)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
        sh("ip", "link", "set", outside, "master", BRIDGE, "up")
        host.run("ip", "addr", "add", f"{host.address}/24", "dev", "eth0")
        host.run("ip", "link", "set", "eth0", "up")
        host.run("ip", "link", "set", "lo", "up")
        self.hosts[name] = host
        return host

    def close(self) -> None:
        remove_leftovers()
        self.hosts.clear()


def remove_leftovers() -> None:
    """Every namespace of ours, the processes still in it first, and the bridge (its veths go with them)."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(f"{PREFIX}-"):
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        sh("ip", "netns", "del", name, check=False)
    if sh("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        sh("ip", "link", "del", BRIDGE)

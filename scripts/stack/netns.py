"""Network namespaces (`ip netns`): a command run inside one, and a port probed from inside (its loopback is not
ours). The tests of network faults place servers in them (tests/netfaults)."""

from __future__ import annotations

import sys

from .paths import require


def inside(netns: str | None) -> list[str]:
    """The prefix that runs a command inside `netns`: nothing for None (ours)."""
    return [] if netns is None else [require("ip"), "netns", "exec", netns]


def in_namespace(netns: str, command: list[str], options: dict) -> tuple[list[str], dict]:
    """`command` run inside a network namespace: `ip netns exec` (root) enters it, then, if the options asked for
    another user, setpriv becomes that user; each execs the next, so the process id is the server's own."""
    options = dict(options)
    uid, gid = options.pop("user", None), options.pop("group", None)
    options.pop("extra_groups", None)
    become = [] if uid is None else [require("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    return [*inside(netns), *become, *command], options


def connect_probe(netns: str, host: str, port: int) -> list[str]:
    """A command that exits 0 if a connection to host:port opens from inside `netns`."""
    return [*inside(netns), sys.executable, "-c",
            "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)", host, str(port)]

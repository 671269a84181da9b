"""Service networking for the pod runner: a stand-in for cluster DNS and kube-proxy.

Every pod runs on this machine's loopback, so a Service's name means nothing to its processes. For each Service
a pod's environment names (`<service>[.<namespace>[.svc[.cluster.local]]]:<port>`, e.g. web's API_URL
`http://shop-purchase-system-api:8080`), the runner rewrites that address to a local proxy port, and the proxy
forwards each TCP connection to one of the Service's ready pods, in turn, as kube-proxy would.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
from typing import Callable, Iterable

from .kube import Kube

_ADDRESS = re.compile(r"\b([a-z0-9]([-a-z0-9]*[a-z0-9])?)((\.[a-z0-9-]+)(\.svc(\.cluster\.local)?)?)?:(\d+)\b")
Backends = Callable[[dict], Iterable[int]]  # a Service's selector -> the ports of its ready pods' processes


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (sink, source):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ServiceProxy:
    """127.0.0.1:<port> -> the ready pods of one Service, connection by connection."""

    def __init__(self, namespace: str, name: str, selector: dict, backends: Backends) -> None:
        self.namespace, self.name, self.selector = namespace, name, selector
        self.backends = backends
        self.turn = itertools.count()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"proxy-{name}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        ports = sorted(self.backends(self.selector))
        if not ports:  # no ready endpoint: the connection is refused, as a Service without endpoints does
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", ports[next(self.turn) % len(ports)]), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self) -> None:
        self.listener.close()


class ServiceNetwork:
    """The proxies of the Services that pods' environments name, made on first use."""

    def __init__(self, kube: Kube, backends: Callable[[str, dict], Iterable[int]]) -> None:
        self.kube = kube
        self.backends = backends
        self.proxies: dict[tuple[str, str], ServiceProxy] = {}
        self.lock = threading.Lock()

    def proxy(self, namespace: str, name: str) -> ServiceProxy | None:
        with self.lock:
            if (namespace, name) not in self.proxies:
                service = self.kube.get(f"/api/v1/namespaces/{namespace}/services/{name}")
                selector = (service or {}).get("spec", {}).get("selector")
                if not selector:
                    return None
                self.proxies[namespace, name] = ServiceProxy(
                    namespace, name, selector, lambda sel, ns=namespace: self.backends(ns, sel))
            return self.proxies[namespace, name]

    def rewrite(self, namespace: str, value: str) -> str:
        """`value` with every address of a Service of this cluster replaced by its local proxy's."""
        def local(match: re.Match) -> str:
            name, qualifier = match.group(1), match.group(3) or ""
            if name.isdigit():  # part of an IP address
                return match.group(0)
            target_namespace = qualifier.split(".")[1] if qualifier else namespace
            proxy = self.proxy(target_namespace, name)
            return f"127.0.0.1:{proxy.port}" if proxy is not None else match.group(0)
        return _ADDRESS.sub(local, value)

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()

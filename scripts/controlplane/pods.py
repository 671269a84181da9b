"""The pod runner: a stand-in for the kubelet that runs each scheduled pod's container as a local process.

For every pod the scheduler has bound to a (kwok) node, in the namespaces it is given:
- the container's command: its `command`/`args`, or else the ENTRYPOINT/CMD of the image's Dockerfile in this
  repository (IMAGES), with `python` meaning this interpreter;
- the environment Kubernetes would give it: `value`s with `$(VAR)` expanded, ConfigMap and Secret keys
  (`valueFrom`, `envFrom`), the downward API's names; `PORT` remapped to a free port (and `HOST` 127.0.0.1),
  because every pod shares this machine's network;
- status reported as a kubelet does: Running with its container running, Ready while the readinessProbe's HTTP
  GET answers 2xx, restarts with back-off and restartCount, and for a pod that runs to completion (a Job's)
  Succeeded or Failed with the exit code, so the Job controller counts it;
- on deletion: the preStop command, SIGTERM, SIGKILL after terminationGracePeriodSeconds, then the pod is
  removed.
Not emulated: images (the repository's code runs), volumes, resource limits, liveness probes, more than one
container per pod (such a pod stays Pending and says why).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from scripts.stack import ROOT, free_port, say, signals_deferred

from .kube import Kube
from .services import ServiceNetwork

# Image repository (without registry or tag) -> the Dockerfile that builds it here (as the Tiltfile does).
IMAGES = {"purchase-api": ROOT / "services" / "api" / "Dockerfile",
          "purchase-web": ROOT / "services" / "web" / "Dockerfile"}
RESTART_BACKOFF_S = (10, 20, 40, 80, 160, 300)  # the kubelet's crash-loop back-off
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_repository(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.split("@")[0].split(":")[0]


def image_command(image: str) -> list[str]:
    """ENTRYPOINT + CMD (exec form) of the last stage of the image's Dockerfile."""
    dockerfile = IMAGES.get(image_repository(image))
    if dockerfile is None:
        raise LookupError(f"no local build for image {image!r} (known: {', '.join(IMAGES)})")
    entrypoint: list[str] = []
    cmd: list[str] = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("FROM "):
            entrypoint, cmd = [], []
        elif line.startswith("ENTRYPOINT "):
            entrypoint = json.loads(line.removeprefix("ENTRYPOINT "))
        elif line.startswith("CMD "):
            cmd = json.loads(line.removeprefix("CMD "))
    return entrypoint + cmd


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: a defined name is replaced, an undefined one kept, `$$` is a `$`."""
    return _VAR.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


class ConfigError(Exception):
    """A pod refers to a ConfigMap or Secret key that is not there (the kubelet's CreateContainerConfigError)."""


@dataclass
class Container:
    """The process running one pod's container."""

    namespace: str
    pod: str
    uid: str
    labels: dict
    spec: dict
    restart_policy: str
    grace_s: int
    env: dict[str, str]
    log_path: Path
    port: int
    process: subprocess.Popen | None = None
    restarts: int = 0
    ready: bool = False  # as last reported
    probed_ready: bool = False  # as the readiness probe last found
    started_at: str = ""
    next_start: float = 0.0
    last_state: dict = field(default_factory=dict)
    stopping: bool = False

    def command(self) -> list[str]:
        command = self.spec.get("command") or image_command(self.spec["image"])
        argv = [expand(part, self.env) for part in [*command, *self.spec.get("args", [])]]
        return [sys.executable if argv[0] in ("python", "python3") else argv[0], *argv[1:]]

    def start(self) -> None:
        log = open(self.log_path, "ab")
        with signals_deferred():
            self.process = subprocess.Popen(self.command(), env=self.env, cwd=ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        log.close()
        self.started_at = now()
        self.ready = self.probed_ready = False
        threading.Thread(target=self._probe_loop, args=(self.process,), daemon=True).start()

    def _probe_loop(self, process: subprocess.Popen) -> None:
        """The readiness probe's HTTP GET every second while this process lives (its timeoutSeconds, default 1),
        on a thread of its own so a hanging service does not hold up the other pods."""
        spec = self.spec.get("readinessProbe") or {}
        probe = spec.get("httpGet")
        session = requests.Session()
        session.trust_env = False
        while process.poll() is None and not self.stopping:
            if probe is None:
                self.probed_ready = True
            else:
                try:
                    answer = session.get(f"http://127.0.0.1:{self.port}{probe.get('path', '/')}",
                                         timeout=spec.get("timeoutSeconds", 1))
                    self.probed_ready = 200 <= answer.status_code < 400
                except requests.RequestException:
                    self.probed_ready = False
            time.sleep(1)
        self.probed_ready = False

    def pre_stop(self) -> None:
        hook = ((self.spec.get("lifecycle") or {}).get("preStop") or {})
        if "exec" in hook:
            subprocess.run(hook["exec"]["command"], env=self.env, cwd=ROOT, timeout=self.grace_s,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        elif "sleep" in hook:
            time.sleep(hook["sleep"]["seconds"])

    def terminate(self) -> None:
        """preStop, SIGTERM, then SIGKILL once the grace period is over (as the kubelet does)."""
        self.stopping = True
        if self.process is None or self.process.poll() is not None:
            return
        deadline = time.monotonic() + self.grace_s
        try:
            self.pre_stop()
        except (OSError, subprocess.SubprocessError):
            pass
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PodRunner:
    """Runs the pods of `namespaces` until stop(); a thread of its own polls the API server."""

    def __init__(self, kube: Kube, namespaces: list[str], workdir: Path, interval_s: float = 0.5,
                 restart_backoff_s: tuple[int, ...] | None = None) -> None:
        """`restart_backoff_s`: seconds before each restart of a crashed container (default: the kubelet's)."""
        self.kube = kube
        self.restart_backoff_s = restart_backoff_s or RESTART_BACKOFF_S
        self.namespaces = namespaces
        self.workdir = Path(workdir)
        self.interval_s = interval_s
        self.containers: dict[str, Container] = {}  # by pod uid
        self.network = ServiceNetwork(kube, self.ready_ports)
        self.refused: set[str] = set()  # pods reported as impossible to run
        self.waiting: dict[str, str] = {}  # pod uid -> why it cannot start yet, as last reported
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="pod-runner", daemon=True)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def start(self) -> "PodRunner":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)
        stoppers = [threading.Thread(target=c.terminate) for c in self.containers.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        self.network.close()

    def ready_ports(self, namespace: str, selector: dict) -> list[int]:
        """The ports of the ready processes of the pods a Service selects (its endpoints)."""
        return [c.port for c in list(self.containers.values()) if c.namespace == namespace and c.ready
                and not c.stopping and all(c.labels.get(k) == v for k, v in selector.items())]

    def service_url(self, namespace: str, service: str) -> str:
        proxy = self.network.proxy(namespace, service)
        if proxy is None:
            raise LookupError(f"no Service {namespace}/{service} with a selector")
        return f"http://127.0.0.1:{proxy.port}"

    def running(self, namespace: str, prefix: str = "") -> list[Container]:
        """Containers whose process is alive, of pods whose names start with `prefix`."""
        return [c for c in list(self.containers.values()) if c.namespace == namespace and c.pod.startswith(prefix)
                and c.process is not None and c.process.poll() is None and not c.stopping]

    # -- the loop ----------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                self._sync()
            except (requests.RequestException, OSError) as exc:  # the API server restarting; try again
                say(f"pod runner: {exc!r}")
            self.stopped.wait(self.interval_s)

    def _sync(self) -> None:
        seen: set[str] = set()
        for namespace in self.namespaces:
            for pod in self.kube.pods(namespace):
                seen.add(pod["metadata"]["uid"])
                self._sync_pod(pod)
        for uid in [uid for uid in self.containers if uid not in seen]:  # deleted by someone else
            container = self.containers.pop(uid)
            threading.Thread(target=container.terminate, daemon=True).start()

    def _sync_pod(self, pod: dict) -> None:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
        uid = meta["uid"]
        container = self.containers.get(uid)
        if meta.get("deletionTimestamp"):
            if container is not None and not container.stopping:
                threading.Thread(target=self._delete, args=(container,), daemon=True).start()
            elif container is None:
                self._remove(meta["namespace"], meta["name"], uid)
            return
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return
        if container is None:
            self._create(pod)
            return
        self._watch(container)

    def _create(self, pod: dict) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        namespace, name = meta["namespace"], meta["name"]
        if meta["uid"] in self.refused:
            return
        if len(spec["containers"]) != 1:
            self._waiting(meta, spec, "Unsupported", "the pod runner runs one container per pod")
            self.refused.add(meta["uid"])
            return
        try:
            port = free_port()
            container = Container(
                namespace=namespace, pod=name, uid=meta["uid"], labels=meta.get("labels") or {},
                spec=spec["containers"][0],
                restart_policy=spec.get("restartPolicy", "Always"),
                grace_s=int(spec.get("terminationGracePeriodSeconds", 30)),
                env=self._environment(pod, spec["containers"][0], port),
                log_path=self.workdir / f"{namespace}_{name}.log", port=port)
            container.start()
        except (ConfigError, LookupError, OSError) as exc:
            self._waiting(meta, spec, "CreateContainerConfigError", str(exc))  # tried again next round
            return
        self.containers[meta["uid"]] = container
        self._report(container)

    def _watch(self, container: Container) -> None:
        if container.stopping or container.process is None:
            return
        code = container.process.poll()
        if code is None:
            ready = container.probed_ready
            if ready != container.ready:
                container.ready = ready
                self._report(container)
            return
        if container.next_start:  # waiting out the back-off before a restart
            if time.monotonic() >= container.next_start:
                container.next_start = 0.0
                container.restarts += 1
                container.start()
                self._report(container)
            return
        finished = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                   "startedAt": container.started_at, "finishedAt": now()}}
        container.last_state, container.ready = finished, False
        if container.restart_policy == "Always" or (container.restart_policy == "OnFailure" and code != 0):
            backoff = self.restart_backoff_s
            container.next_start = time.monotonic() + backoff[min(container.restarts, len(backoff) - 1)]
            self._report(container, waiting="CrashLoopBackOff")
        else:
            self._report(container, terminated=finished)

    def _delete(self, container: Container) -> None:
        container.terminate()
        self.containers.pop(container.uid, None)
        self._remove(container.namespace, container.pod, container.uid)

    def _remove(self, namespace: str, name: str, uid: str) -> None:
        """Finish a deletion as the kubelet does once the containers are gone: delete with grace 0."""
        response = self.kube.session.delete(
            f"{self.kube.server}/api/v1/namespaces/{namespace}/pods/{name}", timeout=10,
            json={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                  "preconditions": {"uid": uid}})
        if response.status_code not in (200, 404, 409):
            response.raise_for_status()

    # -- environment -------------------------------------------------------------------------------------

    def _key(self, kind: str, namespace: str, ref: dict) -> str | None:
        path = "configmaps" if kind == "configMap" else "secrets"
        found = self.kube.get(f"/api/v1/namespaces/{namespace}/{path}/{ref['name']}") or {}
        data = found.get("data") or {}
        if ref["key"] not in data:
            if ref.get("optional"):
                return None
            raise ConfigError(f"{kind} {ref['name']!r} has no key {ref['key']!r}" if found
                              else f"{kind} {ref['name']!r} not found")
        value = data[ref["key"]]
        return base64.b64decode(value).decode() if kind == "secret" else value

    def _field(self, pod: dict, path: str) -> str:
        meta = pod["metadata"]
        fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
                  "spec.nodeName": pod["spec"].get("nodeName", ""),
                  "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
                  "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
        labels = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if labels:
            return (meta.get(labels.group(1)) or {}).get(labels.group(2), "")
        return fields.get(path, "")

    def _environment(self, pod: dict, spec: dict, port: int) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        env: dict[str, str] = {}
        for source in spec.get("envFrom", []):
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref is None:
                    continue
                found = self.kube.get(f"/api/v1/namespaces/{namespace}/{kind.lower()}s/{ref['name']}")
                if found is None and not ref.get("optional"):
                    raise ConfigError(f"{kind} {ref['name']!r} not found")
                for key, value in ((found or {}).get("data") or {}).items():
                    env[source.get("prefix", "") + key] = base64.b64decode(value).decode() if kind == "secret" else value
        for item in spec.get("env", []):
            if "valueFrom" not in item:
                env[item["name"]] = expand(item.get("value", ""), env)
                continue
            source = item["valueFrom"]
            if "configMapKeyRef" in source:
                value = self._key("configMap", namespace, source["configMapKeyRef"])
            elif "secretKeyRef" in source:
                value = self._key("secret", namespace, source["secretKeyRef"])
            elif "fieldRef" in source:
                value = self._field(pod, source["fieldRef"]["fieldPath"])
            else:
                value = None  # resourceFieldRef: no limits are enforced here
            if value is not None:
                env[item["name"]] = value
        env = {name: self.network.rewrite(namespace, value) for name, value in env.items()}
        base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
        return {**base, "PYTHONMALLOC": "malloc", **env, "HOST": "127.0.0.1", "PORT": str(port)}

    # -- status ------------------------------------------------------------------------------------------

    def _waiting(self, meta: dict, spec: dict, reason: str, message: str) -> None:
        if self.waiting.get(meta["uid"]) == message:
            return
        self.waiting[meta["uid"]] = message
        self.kube.patch_status(meta["namespace"], meta["name"], {
            "phase": "Pending",
            "containerStatuses": [{"name": c["name"], "image": c["image"], "imageID": "", "ready": False,
                                   "restartCount": 0, "state": {"waiting": {"reason": reason, "message": message}}}
                                  for c in spec["containers"]]})

    def _report(self, container: Container, waiting: str | None = None, terminated: dict | None = None) -> None:
        if terminated is not None:
            state, phase = terminated, ("Succeeded" if terminated["terminated"]["exitCode"] == 0 else "Failed")
        elif waiting is not None:
            state, phase = {"waiting": {"reason": waiting}}, "Running"
        else:
            state, phase = {"running": {"startedAt": container.started_at}}, "Running"
        ready = "True" if container.ready else "False"
        stamp = now()
        status = {
            "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": container.started_at if not container.restarts else None,
            "conditions": [{"type": kind, "status": value, "lastTransitionTime": stamp} for kind, value in
                           (("Initialized", "True"), ("ContainersReady", ready), ("Ready", ready))],
            "containerStatuses": [{
                "name": container.spec["name"], "image": container.spec["image"], "imageID": "",
                "containerID": f"local://{container.process.pid}" if container.process else "",
                "ready": container.ready, "started": state.get("running") is not None,
                "restartCount": container.restarts, "state": state, "lastState": container.last_state}],
        }
        if status["startTime"] is None:
            del status["startTime"]
        self.kube.patch_status(container.namespace, container.pod, status)

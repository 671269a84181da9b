"""`make cluster` as a user runs it: it comes up, says how to use it, and Ctrl-C stops everything it started."""

import os
import signal
import subprocess
import sys
import time

from scripts.controlplane.network import BRIDGE
from scripts.stack.paths import ROOT
from scripts.stack.waiting import until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def commands() -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            except OSError:
                pass
    return found


def run_what_it_prints(printed: str, tmp_path) -> None:
    """The commands it prints, as printed, in a shell whose PATH has nothing of ours (a machine where nothing was
    installed by hand): the export line then kubectl and helm; the tilt line, evaluating the Tiltfile."""
    lines = [line.strip() for line in printed.splitlines()]
    export = next(line for line in lines if line.startswith("export KUBECONFIG="))
    bare = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path)}
    shell = subprocess.run(["bash", "-c", f"{export} && kubectl get nodes -o name && helm list -A"], env=bare,
                           capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0 and "node/purchase-node" in shell.stdout, shell.stdout + shell.stderr
    start = next(i for i, line in enumerate(lines) if line.startswith("DOCKER_HOST="))
    tilt = (lines[start].rstrip("\\") + " " + lines[start + 1]).replace(" up -- ", " alpha tiltfile-result -- ")
    evaluated = subprocess.run(["bash", "-c", tilt], env=bare, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stdout[-2000:] + evaluated.stderr[-3000:]
    assert "Unable to find Helm" not in evaluated.stderr and "purchase-web" in evaluated.stdout


def test_make_cluster_prints_the_kubeconfig_and_ctrl_c_stops_every_process_it_started(tmp_path, controlplane_binaries):
    log = open(tmp_path / "out.log", "w+")
    cluster = subprocess.Popen([sys.executable, "-m", "scripts.controlplane", "--no-install",
                                "--dir", str(tmp_path / "c")],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        until(lambda: "Ctrl-C stops everything" in (tmp_path / "out.log").read_text()
              or cluster.poll() is not None,
              420, "make cluster to come up")
        printed = (tmp_path / "out.log").read_text()
        assert cluster.poll() is None, printed
        kubeconfig = tmp_path / "c" / "cluster" / "kubeconfig"
        assert f"kubeconfig  {kubeconfig}" in printed and "kubectl get scaledobject,hpa" in printed
        pid_files = list((tmp_path / "c" / "cluster" / "kwok").rglob("pids/*.pid"))
        pids = [int(p.read_text()) for p in pid_files]
        names = sorted(p.stem for p in pid_files)
        assert names == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]
        keda = [pid for pid, args in commands().items() if str(tmp_path) in args and "keda-certs" in args]
        assert len(keda) == 3, "KEDA's operator, adapter and webhooks"
        node = {name: [pid for pid, args in commands().items() if str(tmp_path / "c" / where) in args]
                for name, where in (("containerd", "node/containerd"), ("kubelet", "node/kubelet"),
                                    ("kube-proxy", "node/kube-proxy"), ("coredns", "node/coredns"),
                                    ("registry", "registry"))}
        assert all(len(found) >= 1 for found in node.values()), node
        pids += [pid for found in node.values() for pid in found]
        assert all(alive(pid) for pid in pids + keda)
        assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0
        run_what_it_prints(printed, tmp_path)

        cluster.send_signal(signal.SIGINT)  # what Ctrl-C in its terminal sends
        assert cluster.wait(120) == 0
        time.sleep(1)
        assert [pid for pid in pids + keda if alive(pid)] == []
        assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0, "bridge left"
    finally:
        if cluster.poll() is None:  # an assertion failed while it ran: stop it as a user would, so nothing is left
            cluster.send_signal(signal.SIGINT)
            try:
                cluster.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
        log.close()

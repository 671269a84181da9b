"""Tools the chart and Tiltfile tests need, fetched once into the cache like the local stack (scripts/fetch.py).

- helm, built with `go install helm.sh/helm/v3/cmd/helm@HELM_VERSION` (the real binary; no tarball download).
- the CRD schemas of KEDA and prometheus-operator, as the npm packages @kubernetes-models/keda and
  @kubernetes-models/prometheus-operator (tests/deploy/crd-schemas/package.json), for validating the rendered
  ScaledObject, TriggerAuthentication, ServiceMonitor and PrometheusRule with node.
- tilt, built from its module source (see tilt_binary), to evaluate the Tiltfile.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.stack import gomodule
from scripts.stack.errors import StackError, say
from scripts.stack.paths import CACHE, ROOT, remove_tree
from scripts.stack.process import step

HELM_VERSION = "v3.19.0"
TILT_VERSION = "v0.33.21"
CRD_SCHEMA_DIR = ROOT / "tests" / "deploy" / "crd-schemas"

TILT_WEB_UI = ("<!doctype html><title>Tilt</title><p>This tilt was built from its Go module source, without its web "
               "UI. Follow the run in the terminal (<code>tilt up --stream</code>) or with <code>tilt get</code>.")
# Where tilt finds its placeholder UI (see tilt_binary): the prod web mode serves the embedded one.
TILT_ENV = {"TILT_WEB_MODE": "prod"}

INSTALL_HINTS_NODE = "Node.js 18+ with npm (Debian: apt-get install nodejs npm)"


def helm_binary() -> Path:
    """helm, built from its module source (its own go.mod and go.sum) as `go install` would build it."""
    binary = CACHE / f"helm-{HELM_VERSION}" / "helm"
    if not binary.exists():
        gomodule.build(f"helm {HELM_VERSION}", gomodule.module_source("helm.sh/helm/v3", HELM_VERSION), binary,
                       "./cmd/helm")
    return binary


def crd_schemas() -> Path:
    """node_modules holding @kubernetes-models/keda and /prometheus-operator, installed from the committed lock file."""
    modules = CRD_SCHEMA_DIR / "node_modules"
    packages = ("keda", "prometheus-operator")
    if all((modules / "@kubernetes-models" / name / "package.json").exists() for name in packages):
        return modules
    if shutil.which("npm") is None:
        raise StackError(f"'npm' is not installed: install {INSTALL_HINTS_NODE}")
    step(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], "installing the CRD schemas (npm)",
        cwd=CRD_SCHEMA_DIR)
    return modules


def tilt_binary() -> Path | None:
    """tilt, or None when it cannot be built here (the Tiltfile tests then fail and say why).

    `go install` refuses tilt because its go.mod has replace directives, so we build inside a copy of its
    module source, where they apply. Its web UI is a JavaScript build that the module source does not carry;
    a dev build without it refuses to start `tilt up` or `tilt ci` (it looks for the UI's sources). So a
    one-page placeholder is embedded as the UI (TILT_WEB_UI), and tilt_env() runs tilt in its prod web mode:
    the terminal, `tilt get` and the API work as in a release; the browser page only says where to look.
    """
    binary = CACHE / f"tilt-{TILT_VERSION}-placeholder-ui" / "tilt"
    failed = binary.with_name("build-failed")
    if binary.exists():
        return binary
    if failed.exists():
        return None
    binary.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = gomodule.patched_copy("github.com/tilt-dev/tilt", TILT_VERSION, binary.parent / "src")
        (source / "pkg" / "assets" / "build" / "index.html").write_text(TILT_WEB_UI)
        try:
            gomodule.build(f"tilt {TILT_VERSION}", source, binary, "./cmd/tilt", GOFLAGS="-mod=mod")
        finally:
            remove_tree(source)
        return binary
    except StackError as exc:
        failed.write_text(str(exc))
        say(f"tilt could not be built (rm {failed} to try again):\n{exc}")
        return None


def require_tilt() -> Path:
    tilt = tilt_binary()
    if tilt is None:
        raise StackError("tilt could not be built; see above")
    return tilt


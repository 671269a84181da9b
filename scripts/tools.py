"""Tools the chart and Tiltfile tests need, fetched once into the cache like the local stack.

    python -m scripts.tools fetch

- helm, built with `go install helm.sh/helm/v3/cmd/helm@HELM_VERSION` (the real binary; no tarball download).
- KEDA's CRD schemas, as the npm package @kubernetes-models/keda (tests/deploy/keda/package.json), for
  validating the rendered ScaledObject and TriggerAuthentication with node.
- tilt, built from its module source (see tilt_binary), to evaluate the Tiltfile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from scripts.stack.process import CACHE, ROOT, StackError, fetch_command, remove_tree, require, run, say, writable_copy

HELM_VERSION = "v3.19.0"
TILT_VERSION = "v0.33.21"
KEDA_SCHEMA_DIR = ROOT / "tests" / "deploy" / "keda"

TILT_WEB_UI = ("<!doctype html><title>Tilt</title><p>This tilt was built from its Go module source, without its web "
               "UI. Follow the run in the terminal (<code>tilt up --stream</code>) or with <code>tilt get</code>.")
# Where tilt finds its placeholder UI (see tilt_binary): the prod web mode serves the embedded one.
TILT_ENV = {"TILT_WEB_MODE": "prod"}

INSTALL_HINTS_NODE = "Node.js 18+ with npm (Debian: apt-get install nodejs npm)"


def helm_binary() -> Path:
    binary = CACHE / f"helm-{HELM_VERSION}" / "helm"
    if binary.exists():
        return binary
    go = require("go")
    run([go, "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
        f"building helm {HELM_VERSION} with go install (a few minutes the first time)",
        env={**os.environ, "GOBIN": str(binary.parent)})
    return binary


def keda_schemas() -> Path:
    """node_modules holding @kubernetes-models/keda, installed from the committed lock file."""
    modules = KEDA_SCHEMA_DIR / "node_modules"
    if (modules / "@kubernetes-models" / "keda" / "package.json").exists():
        return modules
    if shutil.which("npm") is None:
        raise StackError(f"'npm' is not installed: install {INSTALL_HINTS_NODE}")
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], "installing KEDA's CRD schemas (npm)",
        cwd=KEDA_SCHEMA_DIR)
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
    go = require("go")
    binary.parent.mkdir(parents=True, exist_ok=True)
    try:
        listing = subprocess.run([go, "mod", "download", "-json", f"github.com/tilt-dev/tilt@{TILT_VERSION}"],
                                 capture_output=True, text=True)
        if listing.returncode != 0:
            raise StackError(f"tilt {TILT_VERSION} is not on the Go module proxy: {listing.stdout}{listing.stderr}")
        source = binary.parent / "src"
        writable_copy(Path(json.loads(listing.stdout)["Dir"]), source)
        (source / "pkg" / "assets" / "build" / "index.html").write_text(TILT_WEB_UI)
        run([go, "build", "-o", str(binary), "./cmd/tilt"], f"building tilt {TILT_VERSION} (several minutes, once)",
            cwd=source, env={**os.environ, "GOFLAGS": "-mod=mod"})
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


def main(argv: list[str]) -> int:
    return fetch_command(argv, __doc__, [("helm", helm_binary), ("KEDA schemas", keda_schemas), ("tilt", require_tilt)])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Go programs from the Go module proxy, all through here: one environment for the go command (one build cache and
one module cache for every build the project makes, under CACHE/go), a module's source downloaded (and, for a
program we change, copied and patched), and a build.

    source = module_source("github.com/tilt-dev/tilt", "v0.33.21")       # the module cache's read-only copy
    source = patched_copy("sigs.k8s.io/kube-network-policies", "v0.8.0", folder, patch)
    build("tilt", source, binary, "./cmd/tilt")
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import StackError
from .paths import CACHE, require, writable_copy
from .process import run, step

GO_CACHES = CACHE / "go"


def go_env(**overrides: str) -> dict[str, str]:
    """The environment every go command of ours runs with: the shared caches, the machine's own toolchain (a go.mod
    may not make it fetch another; FerretDB's build says so when it must), modules resolved as go.sum pins them."""
    return {**os.environ, "GOCACHE": str(GO_CACHES / "build"), "GOMODCACHE": str(GO_CACHES / "mod"),
            "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly", **overrides}


def module_source(module: str, version: str | None = None, within: Path | None = None) -> Path:
    """Where the module cache holds `module` (downloaded first if it is not there): at `version`, or, with `within`
    (a module of ours), at the version its go.mod and go.sum pin."""
    target = f"{module}@{version}" if version else module
    listing = run([require("go"), "mod", "download", "-json", target], check=False, cwd=within or CACHE,
                  env=go_env())
    try:
        source = json.loads(listing.stdout).get("Dir", "") if listing.returncode == 0 else ""
    except json.JSONDecodeError:
        source = ""
    if not source:
        raise StackError(f"could not download {target} from the Go module proxy: {listing.stderr or listing.stdout}")
    return Path(source)


def patched_copy(module: str, version: str, destination: Path, patch: Path | None = None) -> Path:
    """A writable copy of the module's source at `destination`, with `patch` (ours) applied."""
    writable_copy(module_source(module, version), destination)
    if patch is not None:
        # git apply as a plain patch tool: the ceiling keeps it from taking an enclosing repository as its own.
        step([require("git"), "apply", str(patch)], f"applying {patch.name}", cwd=destination,
            env={**os.environ, "GIT_CEILING_DIRECTORIES": str(destination.parent)})
    return destination


def build(name: str, folder: Path, output: Path | str, *packages: str, ldflags: str = "", **env: str) -> None:
    """`go build -trimpath` of `packages` in `folder` (a module) to `output` (a file, or a folder ending in /),
    with the shared environment and `env` over it. Without a symbol table and DWARF (-s -w): nothing here debugs
    these programs, and the linker's time and the binaries' size drop."""
    command = [require("go"), "build", "-trimpath", "-ldflags", f"-s -w {ldflags}".strip(), "-o", str(output),
               *packages]
    step(command, f"building {name} (once; cached afterwards)", cwd=folder, env=go_env(**env))

"""Where things are: the project's root, the cache everything built or fetched goes into (with copies and removals
of trees in it), and the tools we run, on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import StackError

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PURCHASE_CACHE") or Path.home() / ".cache" / "purchase-system")

INSTALL_HINTS = {
    "java": "a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)",
    "mvn": "Apache Maven (Debian: apt-get install maven)",
    "go": "Go 1.22 or newer (https://go.dev/doc/install, or Debian: apt-get install golang)",
    "git": "git (Debian: apt-get install git)",
}


def require(tool: str, hint: str | None = None) -> str:
    """The tool's path, on PATH or in /usr/sbin and /sbin (where Debian puts runc); StackError with `hint` (or
    INSTALL_HINTS') when it is not installed."""
    path = shutil.which(tool) or next((str(p) for p in (Path("/usr/sbin") / tool, Path("/sbin") / tool)
                                       if p.exists()), None)
    if path is None:
        raise StackError(f"'{tool}' is not installed: install {hint or INSTALL_HINTS[tool]}")
    return path


def writable_copy(module_dir: Path, dest: Path) -> None:
    """A copy of a Go module's source that we may change and delete: the module cache's files and folders are
    read-only (the top folder too; as a normal user that made deleting the copy fail), and so are their copies."""
    remove_tree(dest)
    shutil.copytree(module_dir, dest)
    for path in (dest, *dest.rglob("*")):
        path.chmod(path.stat().st_mode | 0o200)


def remove_tree(tree: Path) -> None:
    """Delete a tree, also one left read-only by a copy that was interrupted before it was made writable."""
    if not tree.exists():
        return
    for path in (tree, *tree.rglob("*")):
        if path.is_dir():
            path.chmod(path.stat().st_mode | 0o700)
    shutil.rmtree(tree)

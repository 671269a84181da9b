"""FerretDB, the local stack's MongoDB-wire server: built once from its Go module source with our change
(scripts/ferretdb/sort-limit-pushdown.patch), run on a PostgreSQL cluster of its own (postgres.py).

    FerretDB(folder, port=27017).start()      # starts its PostgreSQL first, stops it last
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import gomodule
from .errors import StackError, say
from .paths import CACHE, ROOT, remove_tree
from .postgres import PostgreSQL
from .process import Server, free_port

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"
# Our change to FerretDB, applied to its source before building: sort and limit pushdown (see the file's header).
FERRETDB_PATCH = ROOT / "scripts" / "ferretdb" / "sort-limit-pushdown.patch"
# FerretDB 1.24 declares toolchain go1.24.x; if the machine's Go cannot build it, fetch that one.
FERRETDB_FALLBACK_TOOLCHAIN = "go1.24.3"


def ferretdb_binary() -> Path:
    """The FerretDB executable, with FERRETDB_PATCH; built from its module source with `go build` on first use."""
    patch_id = hashlib.sha256(FERRETDB_PATCH.read_bytes()).hexdigest()[:12]
    binary = CACHE / f"ferretdb-{FERRETDB_VERSION}" / f"ferretdb-{patch_id}"
    if binary.exists():
        return binary
    source = gomodule.patched_copy(FERRETDB_MODULE, FERRETDB_VERSION, CACHE / f"ferretdb-{FERRETDB_VERSION}" / "src",
                                   FERRETDB_PATCH)
    try:
        # A build outside FerretDB's own tooling must say which version it is, or the binary refuses to start.
        (source / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        try:
            gomodule.build("FerretDB", source, binary, "./cmd/ferretdb", GOTOOLCHAIN="auto")
        except StackError:
            say(f"retrying with GOTOOLCHAIN={FERRETDB_FALLBACK_TOOLCHAIN}")
            gomodule.build("FerretDB", source, binary, "./cmd/ferretdb", GOTOOLCHAIN=FERRETDB_FALLBACK_TOOLCHAIN)
    finally:
        remove_tree(source)
    return binary


class FerretDB(Server):
    """FerretDB on its own PostgreSQL cluster (started first, in data_dir/postgres, stopped last).

    `process` is FerretDB's: a fault test that kills it leaves PostgreSQL running, as a crashed FerretDB would.
    """

    name = "ferretdb"

    def __init__(self, data_dir: Path, port: int = 27017, postgres_port: int | None = None,
                 host: str = "127.0.0.1") -> None:
        super().__init__(data_dir, port, host)
        self.binary = ferretdb_binary()
        self.postgres = PostgreSQL(self.data_dir / "postgres", postgres_port or free_port())

    @property
    def address(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def command(self) -> list[str]:
        # plan_cache_mode: see postgres.py (the history index and FerretDB's prepared statements).
        return [str(self.binary), "--handler=postgresql",
                f"--postgresql-url={self.postgres.address}?plan_cache_mode=force_custom_plan",
                "--test-enable-sort-limit-pushdown",  # FERRETDB_PATCH's
                f"--listen-addr={self.host}:{self.port}", "--state-dir=-", "--debug-addr=-",
                "--telemetry=disable", "--log-level=warn"]

    def spawn(self) -> None:
        self.postgres.netns = self.netns  # in a namespace, its PostgreSQL is on that namespace's loopback
        if self.postgres.process is None or self.postgres.process.poll() is not None:
            self.postgres.start()
        super().spawn()

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
        self.postgres.stop(timeout)

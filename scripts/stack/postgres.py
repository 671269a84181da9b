"""A throwaway PostgreSQL cluster for the local stack's FerretDB, and the index that makes history reads fast.

The cluster is our own: `initdb` into the stack's data folder, its own port on 127.0.0.1, no Unix socket,
trust authentication for local connections only; started and stopped with the stack, never a system cluster.
PostgreSQL refuses to run as root, so when the stack runs as root the server runs as the `postgres` user
(Debian's package creates it) or else `nobody`.

Why PostgreSQL: FerretDB 1.24 on SQLite pushes no filter but a lone `_id` down to SQL, so each history read
decoded the whole collection (~4.7 s at 100,000 purchases). On PostgreSQL it pushes `{userId: X}` down as
`_jsonb->'userId' @> '"X"'` (FerretDB's internal/backends/postgresql/query.go).

The index (HISTORY_INDEX_SQL): that `@>` can use a GIN index on `(_jsonb->'userId') jsonb_path_ops`, not the
btree FerretDB builds for our `{userId: 1, timestamp: -1}` index (measured at 100,000 documents: ~53 ms per read
without it, ~2 ms with it). The services speak plain MongoDB and cannot ask for it, so the stack adds it
with an event trigger that fires when FerretDB creates a collection's table. It relies on two FerretDB 1.24
internals: a MongoDB database is a PostgreSQL schema, and the collection `purchases` is the table
`purchases_<FNV-1a 32 of the name, 8 hex digits>` (metadata/registry.go, collectionCreate), whose documents are
in the jsonb column `_jsonb`. FerretDB's pgx driver also caches one prepared statement per query shape:
`plan_cache_mode=force_custom_plan` in FerretDB's URL keeps PostgreSQL from switching that statement to a
generic plan, which cannot use the GIN index for a parameter. And `fastupdate = off`: by default a GIN index
collects new entries in a pending list that every search scans linearly until a vacuum merges it; after a
burst of inserts that made each read's index scan ~6.5 ms instead of ~0.05 ms (measured at 100,000 documents).
Inserting straight into the index costs nothing measurable here (~13,000 documents/s either way).
The read's sort and limit reach PostgreSQL only through our FerretDB change (scripts/ferretdb/), which keeps
the same `@>` filter: the GIN index serves it there too.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import tempfile
from pathlib import Path

from .errors import StackError
from .netns import inside
from .process import Server, run, step, succeeds

COLLECTION = "purchases"
INSTALL_HINT = ("PostgreSQL's server is not installed: on Debian/Ubuntu `apt-get install postgresql`, "
                "on macOS `brew install postgresql@15` (any version 13 or newer works)")


def fnv1a_32(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def collection_table(collection: str = COLLECTION) -> str:
    """The table FerretDB 1.24 creates for a collection of this (lower-case, plain) name."""
    return f"{collection}_{fnv1a_32(collection):08x}"


HISTORY_INDEX_SQL = f"""
CREATE OR REPLACE FUNCTION purchase_history_index() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  created record;
BEGIN
  FOR created IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
    IF created.object_identity LIKE '%.{collection_table()}' THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS purchases_userid_gin ON %s '
                     'USING gin ((_jsonb->''userId'') jsonb_path_ops) WITH (fastupdate = off)',
                     created.object_identity);
    END IF;
  END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS purchase_history_index;
CREATE EVENT TRIGGER purchase_history_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION purchase_history_index();
"""


def server_binaries() -> Path:
    """The folder of `postgres` and `initdb`: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("postgres") or shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise StackError(INSTALL_HINT)
    return versions[-1].parent


def unprivileged_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise StackError("running as root, and there is neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


class PostgreSQL(Server):
    name = "postgres"
    stop_signal = signal.SIGINT  # PostgreSQL's fast shutdown; SIGTERM would wait for every client to disconnect

    def __init__(self, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port)
        self.bin = server_binaries()
        self.user = unprivileged_user()
        self.cluster = self.data_dir / "cluster"
        self.scratch: Path | None = None

    @property
    def address(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def popen_options(self) -> dict:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": [], "cwd": "/"}

    def _reachable_by_user(self, folder: Path) -> bool:
        return succeeds(["test", "-w", str(folder)], **self.popen_options())

    def prepare(self) -> None:
        if self.user is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if not self._reachable_by_user(self.data_dir) and not self.cluster.exists():
                os.chown(self.data_dir, self.user.pw_uid, self.user.pw_gid)
            if not self._reachable_by_user(self.data_dir):
                # A folder the user cannot reach (e.g. under a 0700 home or pytest's temp root): a scratch one.
                self.scratch = Path(tempfile.mkdtemp(prefix="purchase-postgres-"))
                os.chown(self.scratch, self.user.pw_uid, self.user.pw_gid)
                self.cluster = self.scratch / "cluster"
        if (self.cluster / "PG_VERSION").exists():
            return
        step([str(self.bin / "initdb"), "-D", str(self.cluster), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
             "--locale=C", "--no-sync"], "creating a PostgreSQL cluster for FerretDB", **self.popen_options())

    def command(self) -> list[str]:
        return [str(self.bin / "postgres"), "-D", str(self.cluster), "-c", "listen_addresses=127.0.0.1",
                "-p", str(self.port), "-c", "unix_socket_directories=", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=128MB",
                "-c", "max_connections=200"]

    def start(self, timeout: float = 60.0) -> None:
        super().start(timeout)
        self.sql(HISTORY_INDEX_SQL)

    def sql(self, statements: str) -> str:
        psql = shutil.which("psql") or str(self.bin / "psql")
        # Inside its namespace, if it has one: its loopback is not ours.
        return run([*inside(self.netns), psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", self.address], "psql",
                   input=statements).stdout

    def stop(self, timeout: float = 20.0) -> None:
        super().stop(timeout)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    @property
    def version(self) -> str:
        """The server's version, e.g. "15.18"."""
        printed = run([str(self.bin / "postgres"), "--version"], check=False).stdout
        found = re.search(r"\(PostgreSQL\) (\S+)", printed)  # "postgres (PostgreSQL) 15.18 (Debian ...)"
        return found.group(1) if found else "?"

"""The analyst's local workspace: pulled parquet files, their sync state and a DuckDB of views.

Layout (under the workspace, the current directory unless ``--workspace`` or
``AGNES_WORKSPACE`` says otherwise)::

    data/tables/<table>.parquet     pulled tables (only what the server grants)
    data/analytics.duckdb           one view per pulled table (rebuilt by ``agnes pull``)
    data/.pull-state.json           MD5 and size of each pulled file (per workspace)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Table ids the server hands out; anything else in a manifest is ignored (never a path).
TABLE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


class WorkspaceBusy(Exception):
    """Another ``agnes pull`` holds this workspace (two Claude Code sessions starting at once)."""


class Workspace:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        chosen = root or os.environ.get("AGNES_WORKSPACE") or os.getcwd()
        self.root = Path(chosen).expanduser().resolve()
        self.data = self.root / "data"
        self.tables = self.data / "tables"
        self.database = self.data / "analytics.duckdb"
        self.state_path = self.data / ".pull-state.json"

    def parquet(self, table_id: str) -> Path:
        if not TABLE_ID_RE.match(table_id):
            raise ValueError(f"unsafe table id {table_id!r}")
        return self.tables / f"{table_id}.parquet"

    @contextmanager
    def pull_lock(self) -> Iterator[None]:
        """Hold ``data/.pull.lock`` for one pull. Raises WorkspaceBusy when another pull holds it.

        Two pulls writing the same ``.part`` file truncate each other's bytes; one of them could
        then rename a file with a hole into place and record it as verified.
        """
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.data / ".pull.lock", "a+b") as fh:
            try:
                if os.name == "nt":
                    import msvcrt

                    fh.seek(0)
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
                else:
                    import fcntl

                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise WorkspaceBusy(f"another agnes pull is running in {self.root}; try again when it ends") from None
            yield  # closing the file releases the lock

    def load_state(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        tables = data.get("tables") if isinstance(data, dict) else None
        if not isinstance(tables, dict):
            return {}
        # A hand-edited file must not name paths: only table ids, each with its record.
        return {k: v for k, v in tables.items() if TABLE_ID_RE.match(k) and isinstance(v, dict)}

    def save_state(self, tables: dict[str, dict[str, Any]], server: str) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".pull-state.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"server": server, "tables": tables}, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)

    def local_tables(self) -> list[str]:
        if not self.tables.is_dir():
            return []
        return sorted(p.stem for p in self.tables.glob("*.parquet") if TABLE_ID_RE.match(p.stem))

    def rebuild_views(self) -> list[str]:
        """Recreate ``analytics.duckdb`` with one view per pulled parquet (atomically).

        User tables in the old database are not copied (the file is the pull's own); views
        over unreadable parquet files are skipped. Returns the view names.
        """
        import duckdb

        self.data.mkdir(parents=True, exist_ok=True)
        tmp = self.data / f".analytics.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        created = []
        con = duckdb.connect(str(tmp))
        try:
            for table_id in self.local_tables():
                path = str(self.parquet(table_id)).replace("'", "''")
                try:
                    con.execute(f"CREATE VIEW \"{table_id}\" AS SELECT * FROM read_parquet('{path}')")
                except duckdb.Error:
                    continue
                created.append(table_id)
        finally:
            con.close()
        os.replace(tmp, self.database)
        return created

    def connect(self):  # type: ignore[no-untyped-def]
        """A read-only connection to the workspace database. Raises FileNotFoundError before a pull."""
        import duckdb

        if not self.database.is_file():
            raise FileNotFoundError(f"no pulled data in {self.root}: run 'agnes pull' first")
        return duckdb.connect(str(self.database), read_only=True)

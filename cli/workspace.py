"""The analyst's local workspace: pulled parquet files, their sync state and a DuckDB of views.

Layout (under the workspace, the current directory unless ``--workspace`` or
``AGNES_WORKSPACE`` says otherwise)::

    data/tables/<table>.parquet     pulled tables (only what the server grants)
    data/analytics.duckdb           one view per pulled table (kept up to date by ``agnes pull``)
    data/.pull-state.json           MD5, size and schema fingerprint of each pulled file, and the
                                    views the database holds (per workspace)
    data/snapshots/<name>.parquet   slices of remote tables (``agnes snapshot``), with
    data/snapshots/index.json       what each was made from (table, columns, filter, rows, time)

DuckDB is imported only by the methods that open the database, so a pull that changes no view
never loads it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Table ids the server hands out; anything else in a manifest is ignored (never a path).
TABLE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


class WorkspaceBusy(Exception):
    """Another ``agnes pull`` holds this workspace (two Claude Code sessions starting at once)."""


class ViewError(Exception):
    """The workspace database could not be opened or changed by DuckDB (or DuckDB is missing)."""


def _duckdb():  # type: ignore[no-untyped-def]
    """The duckdb module, imported on first use (0.2-0.3 s). Raises ViewError when it is missing."""
    try:
        import duckdb
    except ImportError as exc:
        raise ViewError(f"DuckDB is not installed ({exc})") from None
    return duckdb


class Workspace:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        chosen = root or os.environ.get("AGNES_WORKSPACE") or os.getcwd()
        self.root = Path(chosen).expanduser().resolve()
        self.data = self.root / "data"
        self.tables = self.data / "tables"
        self.database = self.data / "analytics.duckdb"
        self.state_path = self.data / ".pull-state.json"
        self.snapshots = self.data / "snapshots"
        self.snapshot_index = self.snapshots / "index.json"

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

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _table_keys(value: Any) -> dict[str, Any]:
        # A hand-edited file must not name paths: only table ids.
        return {k: v for k, v in value.items() if TABLE_ID_RE.match(k)} if isinstance(value, dict) else {}

    def load_state(self) -> dict[str, dict[str, Any]]:
        """``{table_id: {"hash", "size_bytes", "updated", "schema"}}`` of the pulled files ({} before a pull)."""
        tables = self._table_keys(self._read_state().get("tables"))
        return {k: v for k, v in tables.items() if isinstance(v, dict)}

    def load_views(self) -> dict[str, str] | None:
        """``{view_name: schema fingerprint}`` of the views in the database, as the last pull recorded
        them; None when not recorded (a workspace from an older ``agnes pull``)."""
        views = self._read_state().get("views")
        if not isinstance(views, dict):
            return None
        return {k: v for k, v in self._table_keys(views).items() if isinstance(v, str)}

    def load_remote(self) -> list[str]:
        """Remote tables this workspace has already been told about (``agnes pull`` says so once)."""
        remote = self._read_state().get("remote")
        return [t for t in remote if isinstance(t, str) and TABLE_ID_RE.match(t)] if isinstance(remote, list) else []

    def save_state(
        self,
        tables: dict[str, dict[str, Any]],
        server: str,
        views: dict[str, str] | None = None,
        remote: list[str] | None = None,
    ) -> None:
        """Write the state file atomically (``views`` None: the views are unknown, the next pull rebuilds
        them; ``remote`` None keeps the recorded list of announced remote tables)."""
        self.data.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(f".pull-state.{os.getpid()}.tmp")
        document: dict[str, Any] = {"server": server, "tables": tables}
        if views is not None:
            document["views"] = views
        document["remote"] = self.load_remote() if remote is None else remote
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True))
        os.replace(tmp, self.state_path)

    def snapshot_path(self, name: str) -> Path:
        if not TABLE_ID_RE.match(name):
            raise ValueError(f"unsafe snapshot name {name!r}")
        return self.snapshots / f"{name}.parquet"

    def load_snapshots(self) -> dict[str, dict[str, Any]]:
        """``{name: {"table", "select", "where", "limit", "order_by", "rows", "size_bytes", "created_at"}}``
        of the snapshots whose file is present ({} before the first)."""
        try:
            data = json.loads(self.snapshot_index.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        found = self._table_keys(data)
        return {k: v for k, v in found.items() if isinstance(v, dict) and self.snapshot_path(k).is_file()}

    def save_snapshots(self, snapshots: dict[str, dict[str, Any]]) -> None:
        """Write the snapshot index atomically."""
        self.snapshots.mkdir(parents=True, exist_ok=True)
        tmp = self.snapshot_index.with_name(f".index.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(snapshots, indent=1, sort_keys=True))
        os.replace(tmp, self.snapshot_index)

    def view_sources(self) -> dict[str, Path]:
        """``{view name: parquet}`` the database should hold: pulled tables, then snapshots (a pulled
        table keeps its name if a snapshot has the same one)."""
        sources = {name: self.snapshot_path(name) for name in self.load_snapshots()}
        sources.update({table_id: self.parquet(table_id) for table_id in self.local_tables()})
        return sources

    def local_tables(self) -> list[str]:
        if not self.tables.is_dir():
            return []
        return sorted(p.stem for p in self.tables.glob("*.parquet") if TABLE_ID_RE.match(p.stem))

    def rebuild_views(self) -> list[str]:
        """Recreate ``analytics.duckdb`` with one view per pulled parquet (atomically).

        User tables in the old database are not copied (the file is the pull's own); views
        over unreadable parquet files are skipped. Returns the view names.

        Raises:
            OSError: the database cannot be replaced (e.g. open in another program on Windows).
            ViewError: DuckDB failed or is missing.
        """
        return self._rewrite(
            lambda con: [t for t in sorted(self.view_sources()) if self._create_view(con, t)], copy=False
        )

    def update_views(self, replace: list[str], drop: list[str]) -> list[str]:
        """Create or replace the views of ``replace`` and drop those of ``drop``; others stay untouched.

        The change is made on a copy renamed over the database, so a reader never sees half of it.
        Falls back to :meth:`rebuild_views` when there is no database (or a write-ahead log beside
        it). Returns the view names in the database afterwards.

        Raises:
            OSError: the database cannot be copied or replaced (e.g. open in another program on Windows).
            ViewError: DuckDB failed or is missing.
        """
        if not self.database.is_file() or self.database.with_name(self.database.name + ".wal").exists():
            return self.rebuild_views()

        def change(con: Any) -> list[str]:
            for table_id in drop:
                con.execute(f'DROP VIEW IF EXISTS "{table_id}"')
            for table_id in replace:
                if not self._create_view(con, table_id):
                    con.execute(f'DROP VIEW IF EXISTS "{table_id}"')
            names = con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
                " AND database_name = current_database() ORDER BY view_name"
            ).fetchall()
            return [name for (name,) in names]

        return self._rewrite(change, copy=True)

    def _rewrite(self, change: Callable[[Any], list[str]], *, copy: bool) -> list[str]:
        """Run ``change(connection)`` on a temporary database (a copy of the current one, or empty)
        and rename it over ``analytics.duckdb``; returns what ``change`` returned."""
        import shutil

        duckdb = _duckdb()
        self.data.mkdir(parents=True, exist_ok=True)
        tmp = self.data / f".analytics.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            if copy:
                shutil.copyfile(self.database, tmp)
            con = duckdb.connect(str(tmp))
            try:
                result = change(con)
            finally:
                con.close()
            os.replace(tmp, self.database)
        except duckdb.Error as exc:
            raise ViewError(str(exc).splitlines()[0]) from None
        finally:
            tmp.unlink(missing_ok=True)
        return result

    def _create_view(self, con: Any, table_id: str) -> bool:
        """``CREATE OR REPLACE VIEW`` over the table's (or snapshot's) parquet; False when DuckDB cannot
        read the file."""
        duckdb = _duckdb()
        source = self.view_sources().get(table_id, self.parquet(table_id))
        path = str(source).replace("'", "''")
        try:
            con.execute(f"CREATE OR REPLACE VIEW \"{table_id}\" AS SELECT * FROM read_parquet('{path}')")
        except duckdb.Error:
            return False
        return True

    def connect(self):  # type: ignore[no-untyped-def]
        """A read-only connection to the workspace database, able to read files under the workspace
        only, with its settings locked (:func:`cli.readonly.lock_down`). Raises FileNotFoundError
        before a pull."""
        import duckdb

        from cli.readonly import lock_down

        if not self.database.is_file():
            raise FileNotFoundError(f"no pulled data in {self.root}: run 'agnes pull' first")
        con = duckdb.connect(str(self.database), read_only=True)
        lock_down(con, [str(self.root.absolute()), str(self.root.resolve())])
        return con

"""The state store: ``system.duckdb`` behind a per-unit-of-work process lease.

DuckDB allows one read-write *process* per database file, and that process blocks even
read-only opens by other processes (duckdb.org, "Concurrency"). Web threads, RQ work-horses
and CLI admin commands are different processes, so the policy (DESIGN.md, "State store") is:

* each process keeps **one** in-memory DuckDB instance for its lifetime;
* a unit of work takes an exclusive ``fcntl.flock`` on ``system.duckdb.lock``, ``ATTACH``es
  the file, works through cursors, commits, ``DETACH``es and releases the lock;
* threads of one process share one attachment (reference counted) instead of attaching twice;
  write units are serialized inside the process so DuckDB never sees two writers conflict;
* a process that forked (RQ work-horses) notices the new pid and builds its own instance.

This module is the only place that opens DuckDB files (the data layer uses
:func:`connect_file` for extracts). It is also the seam for moving state to a server database.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

# Catalog name the state file is attached under in every process.
CATALOG = "sys"
# A shared attachment that has been held this long (seconds) stops admitting new threads
# until it drains, so a busy multi-threaded process cannot starve other processes.
FAIRNESS_WINDOW = 0.05
# DuckDB instances inherited from a parent process: kept referenced so the child never frees them.
_FORK_PARKED: list[Any] = []
MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class StateStoreError(RuntimeError):
    """Raised when the state store cannot be opened or migrated."""


class StateStore:
    """Process-wide access to ``system.duckdb``.

    Use :meth:`read` for units that only read and :meth:`write` for units that change state;
    both yield a DuckDB cursor whose default catalog is the state database. A write unit runs
    in one transaction: it commits when the block exits normally and rolls back on exception.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self._instance: duckdb.DuckDBPyConnection | None = None
        self._lock_fd: int | None = None
        self._state = threading.Condition()
        self._refs = 0
        self._attached_since = 0.0
        self._draining = False
        self._writer = threading.RLock()
        self._local = threading.local()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            # A forked child shares the parent's file descriptors and DuckDB memory; never
            # touch them, start over with our own. The parent's instance must not be destroyed
            # here either (its destructor joins threads that do not exist in the child and
            # segfaults, which killed every RQ work-horse), so it is parked, never freed.
            if self._instance is not None:
                _FORK_PARKED.append(self._instance)
            self._reset_process_state()

    def _instance_con(self) -> duckdb.DuckDBPyConnection:
        if self._instance is None:
            self._instance = duckdb.connect(":memory:")
            # Naive TIMESTAMP columns hold UTC whatever the host time zone is.
            self._instance.execute("SET GLOBAL TimeZone = 'UTC'")
        return self._instance

    # -- the lease -----------------------------------------------------------------------

    def _acquire(self) -> None:
        depth = getattr(self._local, "depth", 0)
        with self._state:
            # A thread already inside a unit (nested call) must not wait for a drain it blocks.
            while depth == 0 and (
                self._draining or (self._refs > 0 and time.monotonic() - self._attached_since > FAIRNESS_WINDOW)
            ):
                if self._refs > 0:
                    self._draining = True
                self._state.wait()
            if self._refs == 0:
                self._attach()
            self._refs += 1
        self._local.depth = depth + 1

    def _release(self) -> None:
        self._local.depth -= 1
        with self._state:
            self._refs -= 1
            if self._refs == 0:
                try:
                    self._detach()
                finally:
                    self._draining = False
                    self._state.notify_all()

    def _attach(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            con = self._instance_con()
            con.execute(f"ATTACH '{_sql_literal(str(self.path))}' AS {CATALOG}")
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd
        self._attached_since = time.monotonic()

    def _detach(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        try:
            con = self._instance_con()
            con.execute(f"DETACH {CATALOG}")
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self._check_fork()
        self._acquire()
        try:
            cur = self._instance_con().cursor()
            try:
                cur.execute(f"USE {CATALOG}")
                yield cur
            finally:
                cur.close()
        finally:
            self._release()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only unit of work (nothing enforces read-only; use :meth:`write` to change)."""
        with self._cursor() as cur:
            yield cur

    @contextmanager
    def write(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A unit of work in one transaction; commits on success, rolls back on error.

        Callbacks registered with :meth:`after_commit` during the unit run after the commit
        (not after a rollback), outside the lease.
        """
        self._check_fork()
        outermost = getattr(self._local, "after_commit", None) is None
        if outermost:
            self._local.after_commit = []
        try:
            with self._writer, self._cursor() as cur:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            callbacks = self._local.after_commit if outermost else []
        finally:
            if outermost:
                self._local.after_commit = None
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback %r failed", callback)

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the current write unit has committed (warehouse's after-commit
        hook: for cache invalidation and enqueueing jobs that must see the committed data).

        Raises:
            StateStoreError: called outside a write unit.
        """
        pending = getattr(self._local, "after_commit", None)
        if pending is None:
            raise StateStoreError("after_commit() needs an open write unit")
        pending.append(callback)

    # -- migrations ----------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations from ``agnes/models/migrations``.

        Each ``NNNN_<what>.sql`` runs in its own transaction and is recorded in
        ``schema_migrations``. Returns the versions applied by this call.
        """
        applied: list[int] = []
        with self.write() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
            )
        for version, name, sql in available_migrations():
            with self.write() as con:
                done = con.execute("SELECT 1 FROM schema_migrations WHERE version = ?", [version]).fetchone()
                if done:
                    continue
                try:
                    con.execute(sql)
                except duckdb.Error as exc:
                    raise StateStoreError(f"migration {version:04d}_{name} failed: {exc}") from exc
                con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
                applied.append(version)
        if applied:
            log.info("state store migrated: applied %s", ", ".join(f"{v:04d}" for v in applied))
        return applied

    def schema_version(self) -> int:
        """Highest applied migration number (0 before the first migration)."""
        with self.read() as con:
            row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
        return int(row[0]) if row else 0


def available_migrations() -> list[tuple[int, str, str]]:
    """Numbered migrations shipped with the package: ``[(version, name, sql)]`` in order.

    Raises:
        StateStoreError: two files share a number.
    """
    found: dict[int, tuple[int, str, str]] = {}
    folder = resources.files("agnes.models") / "migrations"
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise StateStoreError(f"two migrations are numbered {version:04d}")
        found[version] = (version, match.group(2), entry.read_text())
    return [found[v] for v in sorted(found)]


def _sql_literal(value: str) -> str:
    return value.replace("'", "''")


def connect_file(path: str | os.PathLike[str], *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file other than the state store (extracts, analytics, local workspaces).

    These files have a single writer by construction (the job building them), so they are
    opened directly. Callers close the connection.
    """
    return duckdb.connect(str(path), read_only=read_only)


def memory_connection() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB connection (for parsing files, no state access)."""
    return duckdb.connect(":memory:")

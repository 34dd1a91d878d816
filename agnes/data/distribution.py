"""What analysts fetch: the manifest of granted tables and the parquet files behind it.

The manifest's ``hash`` is the MD5 of the published parquet and ``sha256`` its SHA-256 (both
recorded in one read when it was published), so ``agnes pull`` downloads only what changed.
``schema`` fingerprints the table's columns, so the client rebuilds a local view only when its
columns changed. Downloads answer with ``ETag: "<md5>"``, ``X-Content-MD5`` and
``X-Content-SHA256`` when the file on disk is the one those digests belong to, and support
single byte ranges so an interrupted download resumes (RFC 9110 ``Range``/``If-Range``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from agnes.access import Principal, ResourceType, can_access
from agnes.data import data_dir, orchestrator, table_index
from agnes.data.extracts import TABLE_ID_RE, extracts_root, parquet_path
from agnes.data.modes import QueryMode
from agnes.data.remote import snapshot_command
from agnes.errors import AppError, NotFound
from agnes.models import utcnow

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def manifest(principal: Principal) -> dict[str, Any]:
    """``{"tables": {id: {...}}, "server_time"}`` for the tables the caller may pull.

    Each table: ``name, description, hash`` (MD5 hex, kept for existing scripts), ``sha256``
    (hex; ``""`` for files published before it was recorded), ``schema`` (16 hex characters that
    change when the columns change), ``size_bytes, rows, updated, query_mode, source_type, status``
    and ``file`` (False for remote tables: nothing to download; their ``rows`` and ``size_bytes``
    are the source's estimate and size, and ``hash`` is ``""``).

    Admins see every table; others the tables granted to one of their groups. Tables that
    never synced successfully are left out (there is nothing to fetch yet).
    """
    index = table_index.current()
    listed: dict[str, Any] = {}
    for table_id, entry in sorted(index.tables.items()):
        state = index.states.get(table_id)
        if state is None or state.last_success is None:
            continue
        if not can_access(principal, ResourceType.TABLE, table_id):
            continue
        listed[table_id] = {
            "name": entry.name,
            "description": entry.description,
            "hash": state.hash or "",
            "sha256": state.sha256 or "",
            "schema": index.schemas.get(table_id, ""),
            "size_bytes": state.size_bytes or 0,
            "rows": state.rows or 0,
            "updated": state.last_success.isoformat() + "Z",
            "query_mode": entry.query_mode,
            "source_type": entry.source_type,
            "status": state.status,
            "file": entry.query_mode != QueryMode.REMOTE,
        }
    return {"tables": listed, "server_time": utcnow().isoformat() + "Z"}


def catalog(principal: Principal) -> list[dict[str, Any]]:
    """The caller's tables (granted, or all for admins) with figures and columns, for ``agnes catalog``;
    ``fetch_via`` is how to get rows locally (``agnes pull``, or for a remote table the
    ``agnes snapshot create`` line with an estimate)."""
    index = table_index.current()
    listed = []
    for table_id, entry in sorted(index.tables.items()):
        if not can_access(principal, ResourceType.TABLE, table_id):
            continue
        state = index.states.get(table_id)
        listed.append(
            {
                "id": table_id,
                "name": entry.name,
                "description": entry.description,
                "source_type": entry.source_type,
                "query_mode": entry.query_mode,
                "rows": state.rows if state else None,
                "size_bytes": state.size_bytes if state else None,
                "updated": state.last_success.isoformat() + "Z" if state and state.last_success else None,
                "status": state.status if state else None,
                "schedule": entry.schedule,
                "primary_key": entry.primary_key,
                "columns": [{"name": c[0], "type": c[1]} for c in (state.columns if state else [])],
                "fetch_via": snapshot_command(table_id) if entry.query_mode == QueryMode.REMOTE else "agnes pull",
            }
        )
    return listed


@dataclass(frozen=True)
class TableFile:
    path: Path
    size: int
    etag: str  # the MD5 hex when the file is the one the sync state describes
    mtime: float
    md5: str  # "" when the file changed after the table index was read
    sha256: str  # "" then too, and for files published before SHA-256 was recorded


def table_file(table_id: str) -> TableFile:
    """The published parquet of a table. Raises NotFound (unknown, never synced) or AppError 409 (remote)."""
    if not TABLE_ID_RE.match(table_id):
        raise NotFound("table_not_found", "No such table.")
    index = table_index.current()
    entry, state = index.tables.get(table_id), index.states.get(table_id)
    if entry is None:
        raise NotFound("table_not_found", f"No table '{table_id}'.")
    if entry.query_mode == "remote":
        raise AppError(409, "remote_table", f"'{table_id}' is a remote table: query it on the server, not locally.")
    path = parquet_path(data_dir(), entry.source_name, table_id)
    root = extracts_root(data_dir()).resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise NotFound("not_synced", f"'{table_id}' has not been synced yet.") from None
    if not path.resolve().is_relative_to(root):
        raise NotFound("table_not_found", "No such table.")
    if state is not None and state.hash and state.file_mtime_ns == stat.st_mtime_ns:
        return TableFile(path, stat.st_size, state.hash, stat.st_mtime, state.hash, state.sha256 or "")
    # Published after the state was read: still a validator, just not the MD5.
    return TableFile(path, stat.st_size, f"m{stat.st_mtime_ns:x}-{stat.st_size:x}", stat.st_mtime, "", "")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` of a single satisfiable byte range; None when absent.

    Raises AppError 416 for a malformed or unsatisfiable range (multiple ranges are refused too).
    """
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise AppError(416, "range_not_satisfiable", "Only one byte range (bytes=start-end) is supported.")
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start >= size or end < start:
        raise AppError(416, "range_not_satisfiable", f"The file has {size} bytes.")
    return start, end


def read_span(path: Path, start: int, length: int, block: int) -> Iterator[bytes]:
    """Yield ``length`` bytes of ``path`` from ``start`` in blocks."""
    with path.open("rb") as fh:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(block, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def open_at(path: Path, start: int):  # type: ignore[no-untyped-def]
    """The file opened and positioned at ``start`` (for a body that runs to the end)."""
    fh = path.open("rb")
    if start:
        os.lseek(fh.fileno(), start, os.SEEK_SET)
    return fh


# -- preview on the web (/data/<id>) --------------------------------------------------------------

# Rows a table page shows.
PREVIEW_ROWS = 50


@dataclass(frozen=True)
class Preview:
    """The first rows of a table and its columns' null counts, read through the server's DuckDB.

    Attributes:
        columns: ``[(name, type)]`` as DuckDB reads the view.
        rows: at most :data:`PREVIEW_ROWS` rows, each value as text (None for NULL).
        nulls: column name → null count from the parquet's statistics (empty for remote tables).
        error: why no rows could be read (never synced, the view failed), else None.
    """

    columns: list[tuple[str, str]]
    rows: list[list[str | None]]
    nulls: dict[str, int]
    error: str | None = None


def preview(table_id: str, limit: int = PREVIEW_ROWS) -> Preview:
    """The first ``limit`` rows of a table from ``analytics/server.duckdb`` (the views the
    manifest describes), and null counts from its parquet's metadata. Never raises for a table
    that cannot be read: the reason is in ``error``."""
    if not TABLE_ID_RE.match(table_id):
        raise NotFound("table_not_found", "No such table.")
    con = orchestrator.open_analytics(data_dir())
    if con is None:
        return Preview([], [], {}, "not synced yet")
    try:
        try:
            cursor = con.execute(f'SELECT * FROM "{table_id}" LIMIT {int(limit)}')
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            return Preview([], [], {}, "not synced yet" if "does not exist" in message else message)
        columns = [(d[0], str(d[1])) for d in cursor.description or []]
        rows = [[None if v is None else str(v) for v in row] for row in cursor.fetchall()]
        nulls: dict[str, int] = {}
        try:
            found = table_file(table_id)
        except AppError:
            found = None
        if found is not None:
            stats = con.execute(
                "SELECT path_in_schema, sum(stats_null_count) FROM parquet_metadata(?) GROUP BY 1", [str(found.path)]
            ).fetchall()
            nulls = {str(name): int(count) for name, count in stats if count is not None}
        return Preview(columns, rows, nulls)
    finally:
        con.close()

"""The ``extract.duckdb`` contract: per-source output written atomically.

Layout (DESIGN.md, "Data distribution")::

    extracts/<source>/extract.duckdb     _meta(table_name, description, rows, size_bytes,
                                          extracted_at, query_mode), one view per table,
                                          and _remote_views(table_name, sql) for remote tables
    extracts/<source>/data/<table>.parquet

Every change is a new file renamed over the old one (``os.replace``), so a reader never sees
half a parquet or half an extract, and a failed extraction leaves the previous files alone.
Several tables share a source, so changes to one source are serialized by ``flock`` on
``extracts/<source>/.lock``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agnes.data.connectors._files import quote_ident, sql_string
from agnes.files import file_lock
from agnes.models.db import connect_file

log = logging.getLogger(__name__)

# A source directory name and a table id (view name, parquet file name): no dots, no slashes.
SOURCE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TABLE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
EXTRACT_FILE = "extract.duckdb"
# Bytes read per step when hashing.
HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class MetaRow:
    """One ``_meta`` row (plus the SQL of a remote view, which is not in ``_meta``)."""

    table_name: str
    description: str
    rows: int
    size_bytes: int
    extracted_at: datetime
    query_mode: str
    view_sql: str | None = None


def extracts_root(data_dir: Path) -> Path:
    return Path(data_dir) / "extracts"


def source_dir(data_dir: Path, source: str) -> Path:
    if not SOURCE_RE.match(source):
        raise ValueError(f"unsafe source name {source!r}")
    return extracts_root(data_dir) / source


def parquet_path(data_dir: Path, source: str, table_id: str) -> Path:
    """``extracts/<source>/data/<table_id>.parquet``. Raises ValueError for unsafe names."""
    if not TABLE_ID_RE.match(table_id):
        raise ValueError(f"unsafe table id {table_id!r}")
    return source_dir(data_dir, source) / "data" / f"{table_id}.parquet"


@dataclass(frozen=True)
class Digests:
    """Hex digests of one file: ``md5`` (the manifest's ``hash`` and the download ETag) and ``sha256``."""

    md5: str
    sha256: str


def file_digests(path: Path) -> Digests:
    """MD5 and SHA-256 of a file in one read (1 MiB blocks, one reused buffer).

    Raises OSError when the file cannot be read.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as fh:
        while count := fh.readinto(buffer):
            block = view[:count]
            md5.update(block)
            sha256.update(block)
    return Digests(md5.hexdigest(), sha256.hexdigest())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_meta(extract: Path) -> list[MetaRow]:
    """The ``_meta`` rows of an extract (with remote view SQL when recorded). Missing file → ``[]``.

    Raises ``duckdb.Error`` for a corrupt file or one without ``_meta``.
    """

    if not extract.is_file():
        return []
    con = connect_file(extract, read_only=True)
    try:
        rows = con.execute(
            "SELECT table_name, coalesce(description, ''), coalesce(rows, 0), coalesce(size_bytes, 0),"
            " extracted_at, coalesce(query_mode, 'local') FROM _meta ORDER BY table_name"
        ).fetchall()
        remote: dict[str, str] = {}
        has_remote = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()"
            " AND table_name = '_remote_views'"
        ).fetchone()
        if has_remote and has_remote[0]:
            remote = dict(con.execute("SELECT table_name, sql FROM _remote_views").fetchall())
    finally:
        con.close()
    return [MetaRow(*row, view_sql=remote.get(row[0])) for row in rows]


def _write_extract(directory: Path, rows: list[MetaRow]) -> None:
    """Write ``extract.duckdb`` for ``rows`` to a temp file and rename it into place."""

    target = directory / EXTRACT_FILE
    tmp = directory / f".{EXTRACT_FILE}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    con = connect_file(tmp)
    try:
        con.execute(
            "CREATE TABLE _meta (table_name VARCHAR PRIMARY KEY, description VARCHAR, rows BIGINT,"
            " size_bytes BIGINT, extracted_at TIMESTAMP, query_mode VARCHAR)"
        )
        con.execute("CREATE TABLE _remote_views (table_name VARCHAR PRIMARY KEY, sql VARCHAR)")
        for row in rows:
            con.execute(
                "INSERT INTO _meta VALUES (?, ?, ?, ?, ?, ?)",
                [row.table_name, row.description, row.rows, row.size_bytes, row.extracted_at, row.query_mode],
            )
            if row.view_sql:
                con.execute("INSERT INTO _remote_views VALUES (?, ?)", [row.table_name, row.view_sql])
                body = row.view_sql
            else:
                parquet = directory / "data" / f"{row.table_name}.parquet"
                body = f"SELECT * FROM read_parquet({sql_string(str(parquet))})"
            try:
                con.execute(f"CREATE VIEW {quote_ident(row.table_name)} AS {body}")
            except Exception as exc:  # a remote view over other tables binds only in analytics
                log.info("extract %s: view %s left to the orchestrator (%s)", directory.name, row.table_name, exc)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    _fsync(tmp)
    os.replace(tmp, target)


def publish(
    data_dir: Path,
    source: str,
    row: MetaRow,
    parquet_tmp: Path | None,
) -> Path | None:
    """Put one table's new output in place: its parquet (renamed over the old) and its ``_meta`` row.

    Args:
        parquet_tmp: the freshly written parquet (None for a remote table, whose old file is removed).

    Returns:
        The published parquet path (None for remote tables).
    """
    directory = source_dir(data_dir, source)
    final = parquet_path(data_dir, source, row.table_name)
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(directory / ".lock"):
        if parquet_tmp is not None:
            _fsync(parquet_tmp)
            os.replace(parquet_tmp, final)
        else:
            final.unlink(missing_ok=True)
        try:
            existing = read_meta(directory / EXTRACT_FILE)
        except Exception:
            log.warning("extract of source %s was unreadable; rebuilding it from this table", source)
            existing = []
        rows = [r for r in existing if r.table_name != row.table_name] + [row]
        _write_extract(directory, sorted(rows, key=lambda r: r.table_name))
    return final if parquet_tmp is not None else None


def unpublish(data_dir: Path, source: str, table_id: str) -> None:
    """Remove a table from its source (parquet and ``_meta`` row); an emptied source goes entirely."""
    directory = source_dir(data_dir, source)
    if not directory.exists():
        return
    with file_lock(directory / ".lock"):
        parquet_path(data_dir, source, table_id).unlink(missing_ok=True)
        try:
            existing = read_meta(directory / EXTRACT_FILE)
        except Exception:
            existing = []
        rows = [r for r in existing if r.table_name != table_id]
        if rows:
            _write_extract(directory, rows)
            return
        (directory / EXTRACT_FILE).unlink(missing_ok=True)
        shutil.rmtree(directory / "data", ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)

"""Shared parts of the file connectors (csv, parquet, json): locating, fetching, writing.

A location is an absolute path on the server (globs allowed) under a directory listed in
``AGNES_DATA_SOURCE_DIRS`` (checked by :mod:`agnes.data.locations`), or an ``http(s)://`` URL
that is downloaded to a temp file first.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from agnes.data import locations
from agnes.data.connectors import ExtractError, ExtractRequest, ExtractResult, Option
from agnes.data.modes import QueryMode
from agnes.errors import Invalid
from agnes.models.db import memory_connection

# Seconds to wait for a URL to answer (and between bytes).
URL_TIMEOUT = 60
# Largest file fetched from a URL (bytes).
URL_MAX_BYTES = 20 * 1024**3
# A DuckDB type name in a ``types`` override (no quotes, no statements).
TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\(\s*\d+(\s*,\s*\d+)?\s*\))?(\[\])?$")

LOCATION = Option(
    "location",
    "File path or URL",
    required=True,
    help="Absolute path on the server (globs allowed) under a directory listed in AGNES_DATA_SOURCE_DIRS,"
    " or an http(s) URL.",
)
RENAME = Option(
    "rename",
    "Rename columns",
    kind="map",
    help="One 'old name = new_name' per line, e.g. 'Culmen Length (mm) = culmen_length_mm'.",
)
NORMALIZE = Option(
    "normalize_names",
    "Normalize column names",
    kind="bool",
    help="Lower-case names and replace spaces and brackets with underscores.",
)


def sql_string(value: str) -> str:
    """A SQL string literal (DuckDB standard strings: only quotes need doubling)."""
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def public_url(url: str) -> str:
    """``url`` without user info or query string (safe to show in errors and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def validate_location(spec: dict[str, Any]) -> dict[str, Any]:
    location = spec["location"]
    if "://" in location and not is_url(location):
        raise Invalid("invalid_location", "Only http(s) URLs and server paths are supported.", field="spec.location")
    if is_url(location):
        parts = urlsplit(location)
        if not parts.hostname:
            raise Invalid("invalid_location", "The URL has no host.", field="spec.location")
        if parts.username or parts.password:
            # The spec is stored in the database and shown to admins: never a credential.
            raise Invalid(
                "credentials_in_url",
                "Do not put credentials in the URL; the table spec is not a secret.",
                field="spec.location",
            )
    elif "\x00" in location:
        raise Invalid("invalid_location", "The path contains a NUL byte.", field="spec.location")
    else:
        locations.check_location(location, field="spec.location")
    for old, new in (spec.get("rename") or {}).items():
        if not new.strip():
            raise Invalid("invalid_option", f"New name for {old!r} is empty.", field="spec.rename")
    if len(set((spec.get("rename") or {}).values())) != len(spec.get("rename") or {}):
        raise Invalid("invalid_option", "Two columns are renamed to the same name.", field="spec.rename")
    for column, type_name in (spec.get("types") or {}).items():
        if not TYPE_RE.match(type_name):
            raise Invalid(
                "invalid_option", f"{type_name!r} is not a DuckDB type name (column {column}).", field="spec.types"
            )
    return spec


def check_mode(spec: Mapping[str, Any], mode: QueryMode) -> None:
    """Remote file tables are views over a server path; a URL would need fetching per query."""
    if mode is QueryMode.REMOTE and is_url(str(spec.get("location", ""))):
        raise Invalid("invalid_query_mode", "A remote table needs a server path, not a URL.", field="query_mode")


def resolve_location(request: ExtractRequest, suffix: str) -> list[str]:
    """Local files DuckDB can read: the server files the location names now (each resolved and
    checked against ``AGNES_DATA_SOURCE_DIRS``), or the URL downloaded into ``workdir``.

    Raises:
        ExtractError: nothing matches, or a file resolves outside the allowed directories.
    """
    location = str(request.spec["location"])
    if is_url(location):
        return [str(fetch_url(location, request.workdir / f"download{suffix}"))]
    try:
        return locations.resolve_files(location, data_dir=request.data_dir, roots=list(request.source_roots))
    except locations.LocationRefused as exc:
        raise ExtractError(exc.message) from None
    except FileNotFoundError:
        raise ExtractError(f"file not found: {location}") from None


def sql_paths(paths: list[str]) -> str:
    """A DuckDB reader's file argument: one literal, or a list of them."""
    if len(paths) == 1:
        return sql_string(paths[0])
    return "[" + ", ".join(sql_string(p) for p in paths) + "]"


def fetch_url(url: str, target: Path) -> Path:
    """Download ``url`` to ``target`` (streamed). Raises ExtractError with a safe message."""
    import urllib.error
    import urllib.request

    shown = public_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": "agnes-extract"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response, target.open("wb") as out:
            copied = 0
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                copied += len(block)
                if copied > URL_MAX_BYTES:
                    raise ExtractError(f"{shown} is larger than {URL_MAX_BYTES // 1024**3} GB")
                out.write(block)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise ExtractError(f"could not download {shown}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ExtractError(f"could not download {shown}: {reason}") from None
    return target


def projection(columns: list[str], rename: Mapping[str, str] | None) -> str:
    """``SELECT`` list applying ``rename``. Raises ExtractError for a column that is not there."""
    rename = dict(rename or {})
    missing = [old for old in rename if old not in columns]
    if missing:
        raise ExtractError(
            f"cannot rename column {missing[0]!r}: the file has no such column (it has: {', '.join(columns)})"
        )
    parts = []
    for column in columns:
        if column in rename:
            parts.append(f"{quote_ident(column)} AS {quote_ident(rename[column])}")
        else:
            parts.append(quote_ident(column))
    return ", ".join(parts)


def first_lines(message: str, count: int = 3) -> str:
    """The useful head of a DuckDB error (drops its long 'Possible fixes' advice)."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    kept = []
    for line in lines:
        if line.lower().startswith(("possible fixes", "* ")):
            break
        kept.append(line)
    return " ".join(kept[:count])[:600]


def write_table(request: ExtractRequest, source_sql: str, rename: Mapping[str, str] | None, what: str) -> ExtractResult:
    """Write ``SELECT <renamed columns> FROM <source_sql>`` to ``request.output`` (or a view).

    ``what`` names the input in error messages (the location, never a secret).
    """
    import duckdb

    con = memory_connection()
    try:
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
            select = f"SELECT {projection([row[0] for row in described], rename)} FROM {source_sql}"
            if request.query_mode is QueryMode.REMOTE:
                # Counting reads the whole file, so malformed rows fail the sync, not later queries.
                shape = con.execute(f"DESCRIBE {select}").fetchall()
                rows = con.execute(f"SELECT count(*) FROM ({select})").fetchone()
                return ExtractResult(int(rows[0]) if rows else 0, [[r[0], r[1]] for r in shape], view_sql=select)
            copied = con.execute(
                f"COPY ({select}) TO {sql_string(str(request.output))}"
                " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
            ).fetchone()
            shape = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(str(request.output))})").fetchall()
        except duckdb.Error as exc:
            raise ExtractError(f"cannot read {what}: {first_lines(str(exc))}") from None
        return ExtractResult(int(copied[0]) if copied else 0, [[r[0], r[1]] for r in shape])
    finally:
        con.close()


def display_location(spec: Mapping[str, Any]) -> str:
    location = str(spec.get("location", ""))
    return public_url(location) if is_url(location) else location


def options_sql(pairs: Mapping[str, Any]) -> str:
    """``, key=value`` arguments for a DuckDB reader; values become literals."""
    parts = []
    for key, value in pairs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            parts.append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, int):
            parts.append(f"{key}={value}")
        elif isinstance(value, list | tuple):
            parts.append(f"{key}=[{', '.join(sql_string(str(v)) for v in value)}]")
        elif isinstance(value, dict):
            items = ", ".join(f"{sql_string(str(k))}: {sql_string(str(v))}" for k, v in value.items())
            parts.append(f"{key}={{{items}}}")
        else:
            parts.append(f"{key}={sql_string(str(value))}")
    return "".join(f", {p}" for p in parts)


def cleanup(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)

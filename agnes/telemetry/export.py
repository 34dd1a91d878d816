"""Usage export (``GET /api/admin/usage/export``, ``agnes admin usage export``).

Rows are written by DuckDB's COPY into a temporary file (constant memory, inside one short read
unit) and streamed from there; the file is unlinked as soon as it is opened, so nothing is left
behind whatever happens to the download.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO

from flask import current_app

from agnes import people
from agnes.audit import current_actor, write_audit
from agnes.errors import Invalid, NotFound
from agnes.models import telemetry, utcnow
from agnes.state import state_store
from agnes.telemetry.attribution import SOURCES

FORMATS = {"csv": "text/csv", "json": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
WHATS = ("events", "sessions")
RELATIVE_RE = re.compile(r"^(\d{1,5})([dh])$")


@dataclass(frozen=True)
class ExportQuery:
    format: str = "csv"
    what: str = "events"
    since: datetime | None = None
    until: datetime | None = None
    user_id: str | None = None
    source: str | None = None


def parse_when(value: str, field: str, *, end: bool = False) -> datetime:
    """``2026-05-01``, ``2026-05-01T12:00:00``, or relative ``7d`` / ``12h`` (before now), as naive UTC.
    A bare date as ``until`` means the end of that day. Raises Invalid naming ``field``."""
    value = value.strip()
    match = RELATIVE_RE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return utcnow() - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            f"invalid_{field}",
            f"{field} must be a date (2026-05-01), a time (2026-05-01T12:00) or 7d / 12h.",
            field=field,
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.replace(tzinfo=None) - (parsed.utcoffset() or timedelta(0))
    return parsed


def parse_export_query(args: Mapping[str, str]) -> ExportQuery:
    """Validate the export's query arguments. Raises Invalid (400) naming the field."""
    fmt = (args.get("format") or "csv").lower()
    if fmt not in FORMATS:
        raise Invalid("invalid_format", f"format must be one of: {', '.join(FORMATS)}.", field="format")
    what = (args.get("what") or "events").lower()
    if what not in WHATS:
        raise Invalid("invalid_what", "what must be events or sessions.", field="what")
    since = parse_when(args["since"], "since") if args.get("since") else None
    until = parse_when(args["until"], "until", end=True) if args.get("until") else None
    if since and until and since >= until:
        raise Invalid("invalid_since", "since must be before until.", field="since")
    source = args.get("source") or None
    if source is not None and source not in SOURCES:
        raise Invalid("invalid_source", f"source must be one of: {', '.join(SOURCES)}.", field="source")
    user_id = None
    if args.get("user"):
        try:
            user_id = people.resolve_user(args["user"]).id
        except NotFound:
            raise Invalid("invalid_user", f"There is no user {args['user']}.", field="user") from None
    return ExportQuery(fmt, what, since, until, user_id, source)


def export(query: ExportQuery) -> tuple[IO[bytes], int, str]:
    """Write the export; returns ``(open file, rows, download name)``. The file is already unlinked:
    closing it frees the space. Audited ``usage.export`` with the row count."""
    folder = Path(current_app.config["AGNES_DATA_DIR"]) / "state" / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="usage-export-", suffix=f".{query.format}", dir=folder)
    os.close(fd)
    try:
        with state_store().read() as con:
            rows = telemetry.copy_export(
                con,
                query.what,
                query.format,
                name,
                since=query.since,
                until=query.until,
                user_id=query.user_id,
                source=query.source,
            )
        handle = open(name, "rb")  # noqa: SIM115 - handed to the response, which closes it
    finally:
        os.unlink(name)
    actor = current_actor()
    write_audit(
        "usage.export",
        user_id=actor.user_id,
        resource=f"usage:{query.what}",
        params={
            "format": query.format,
            "rows": rows,
            "since": query.since.isoformat() if query.since else None,
            "until": query.until.isoformat() if query.until else None,
            "user": query.user_id,
            "source": query.source,
        },
        client_ip=actor.client_ip,
        client_kind=actor.client_kind,
        correlation_id=actor.correlation_id,
    )
    return handle, rows, f"agnes-usage-{query.what}-{utcnow():%Y%m%d-%H%M%S}.{query.format}"

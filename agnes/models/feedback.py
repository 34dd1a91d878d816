"""``feedback_reports``: what analysts sent with ``agnes report``, and its triage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record

# Statuses of a report, in the order the inbox lists their counts.
STATUSES = ("open", "triaged", "resolved", "wontfix")

_COLUMNS = (
    "f.id, f.created_at, f.reporter_id, r.email, f.message, f.session_id, f.excerpt, f.excerpt_bytes,"
    " f.excerpt_purged_at, f.excerpt_purged_by, f.environment, f.ack_preview, f.fingerprint, f.status,"
    " f.assignee, a.email, f.tags, f.resolution, f.resolved_at, f.resolved_by, f.updated_at"
)
_FROM = " FROM feedback_reports f LEFT JOIN users r ON r.id = f.reporter_id LEFT JOIN users a ON a.id = f.assignee"


@dataclass(frozen=True)
class FeedbackReport(Record):
    """One report. ``excerpt`` is the list of turns sent (None when none was sent or it was
    purged); ``environment`` is ``{"agnes", "claude_code", "os", "python"}`` as reported."""

    id: str
    created_at: datetime
    reporter_id: str
    reporter_email: str | None
    message: str
    session_id: str | None
    excerpt: list[dict[str, Any]] | None
    excerpt_bytes: int
    excerpt_purged_at: datetime | None
    excerpt_purged_by: str | None
    environment: dict[str, Any]
    ack_preview: str | None
    fingerprint: str
    status: str
    assignee: str | None
    assignee_email: str | None
    tags: list[str]
    resolution: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    updated_at: datetime


def _report(row: tuple[Any, ...]) -> FeedbackReport:
    values = list(row)
    values[6] = json.loads(values[6]) if values[6] else None
    values[10] = json.loads(values[10] or "{}")
    values[16] = json.loads(values[16] or "[]")
    return FeedbackReport(*values)


def insert_report(
    con: DuckDBPyConnection,
    *,
    report_id: str,
    reporter_id: str,
    message: str,
    session_id: str | None,
    excerpt: list[dict[str, Any]] | None,
    excerpt_bytes: int,
    environment: dict[str, Any],
    ack_preview: str | None,
    fingerprint: str,
) -> None:
    con.execute(
        "INSERT INTO feedback_reports (id, reporter_id, message, session_id, excerpt, excerpt_bytes, environment,"
        " ack_preview, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            report_id,
            reporter_id,
            message,
            session_id,
            json.dumps(excerpt) if excerpt is not None else None,
            excerpt_bytes,
            json.dumps(environment, sort_keys=True),
            ack_preview,
            fingerprint,
        ],
    )


def get_report(con: DuckDBPyConnection, report_id: str) -> FeedbackReport | None:
    row = con.execute(f"SELECT {_COLUMNS}{_FROM} WHERE f.id = ?", [report_id]).fetchone()
    return _report(row) if row else None


def list_reports(
    con: DuckDBPyConnection,
    *,
    status: str = "",
    tag: str = "",
    assignee: str = "",
    reporter_id: str = "",
    fingerprint: str = "",
    limit: int = 100,
    offset: int = 0,
) -> list[FeedbackReport]:
    """Newest first. ``assignee`` is a user id, or ``none`` for unassigned reports."""
    clauses, params = _filters(
        status=status, tag=tag, assignee=assignee, reporter_id=reporter_id, fingerprint=fingerprint
    )
    rows = con.execute(
        f"SELECT {_COLUMNS}{_FROM}{clauses} ORDER BY f.created_at DESC, f.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    return [_report(r) for r in rows]


def _filters(**values: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if values["status"]:
        clauses.append("f.status = ?")
        params.append(values["status"])
    if values["tag"]:
        clauses.append("list_contains(CAST(json_extract_string(f.tags, '$[*]') AS VARCHAR[]), ?)")
        params.append(values["tag"])
    if values["assignee"] == "none":
        clauses.append("f.assignee IS NULL")
    elif values["assignee"]:
        clauses.append("f.assignee = ?")
        params.append(values["assignee"])
    if values["reporter_id"]:
        clauses.append("f.reporter_id = ?")
        params.append(values["reporter_id"])
    if values["fingerprint"]:
        clauses.append("f.fingerprint = ?")
        params.append(values["fingerprint"])
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def count_reports(con: DuckDBPyConnection, *, status: str = "", tag: str = "", assignee: str = "") -> int:
    clauses, params = _filters(status=status, tag=tag, assignee=assignee, reporter_id="", fingerprint="")
    return int(con.execute(f"SELECT count(*) FROM feedback_reports f{clauses}", params).fetchone()[0])  # type: ignore[index]


def count_by_status(con: DuckDBPyConnection) -> dict[str, int]:
    """``{status: count}`` for every status (0 when none)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in con.execute("SELECT status, count(*) FROM feedback_reports GROUP BY status").fetchall():
        counts[status] = int(count)
    return counts


def count_duplicates(con: DuckDBPyConnection, fingerprints: list[str]) -> dict[str, int]:
    """Reports sharing each fingerprint (the report itself included)."""
    if not fingerprints:
        return {}
    rows = con.execute(
        "SELECT fingerprint, count(*) FROM feedback_reports WHERE fingerprint IN"
        f" ({', '.join('?' for _ in fingerprints)}) GROUP BY fingerprint",
        fingerprints,
    ).fetchall()
    return {fp: int(n) for fp, n in rows}


def list_tags(con: DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT unnest(CAST(json_extract_string(tags, '$[*]') AS VARCHAR[])) AS tag FROM feedback_reports"
        " ORDER BY tag"
    ).fetchall()
    return [r[0] for r in rows if r[0]]


def update_report(con: DuckDBPyConnection, report_id: str, **changes: Any) -> None:
    """Set the given columns and ``updated_at``: ``status``, ``assignee``, ``tags`` (a list),
    ``resolution``, ``resolved_at``, ``resolved_by``, ``excerpt`` and ``ack_preview`` (None to
    purge), ``excerpt_purged_at``, ``excerpt_purged_by``."""
    allowed = {
        "status",
        "assignee",
        "tags",
        "resolution",
        "resolved_at",
        "resolved_by",
        "excerpt",
        "ack_preview",
        "excerpt_purged_at",
        "excerpt_purged_by",
    }
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    values = {k: json.dumps(v) if k == "tags" else v for k, v in changes.items()}
    assignments = ", ".join(f"{column} = ?" for column in values)
    con.execute(
        f"UPDATE feedback_reports SET {assignments}, updated_at = current_timestamp WHERE id = ?",
        [*values.values(), report_id],
    )

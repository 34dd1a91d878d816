"""``session_findings`` and ``finding_scan_state``: the failure scan's results and checkpoints,
and the reads of ``/admin/sessions`` (processed sessions with their findings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id


@dataclass(frozen=True)
class SessionFinding(Record):
    id: str
    user_id: str
    session_id: str
    session_file: str
    finding_type: str
    turn_index: int
    severity: str
    excerpt: str
    detected_at: datetime


_FINDING_COLUMNS = "id, user_id, session_id, session_file, finding_type, turn_index, severity, excerpt, detected_at"


@dataclass(frozen=True)
class ScanCandidate:
    """A stored transcript the scan has not judged at its current bytes and scanner version."""

    path: str
    user_id: str
    session_id: str
    sha256: str


def files_to_scan(con: DuckDBPyConnection, version: int, now: datetime, *, limit: int = 5000) -> list[ScanCandidate]:
    """Session files whose checkpoint is missing, older (bytes or version), or due a recheck."""
    rows = con.execute(
        "SELECT f.path, f.user_id, f.session_id, f.sha256 FROM session_files f"
        " LEFT JOIN finding_scan_state s ON s.path = f.path"
        " WHERE s.path IS NULL OR s.sha256 <> f.sha256 OR s.scanner_version <> ? OR s.recheck_after <= ?"
        " ORDER BY f.updated_at LIMIT ?",
        [version, now, limit],
    ).fetchall()
    return [ScanCandidate(*r) for r in rows]


def replace_findings(
    con: DuckDBPyConnection,
    candidate: ScanCandidate,
    findings: list[tuple[str, int, str, str]],
    *,
    version: int,
    now: datetime,
    recheck_after: datetime | None,
) -> None:
    """Replace a file's findings (``(type, line, severity, excerpt)``) and write its checkpoint."""
    con.execute("DELETE FROM session_findings WHERE session_file = ?", [candidate.path])
    if findings:
        con.executemany(
            f"INSERT INTO session_findings ({_FINDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [new_id(), candidate.user_id, candidate.session_id, candidate.path, kind, line, severity, text, now]
                for kind, line, severity, text in findings
            ],
        )
    con.execute("DELETE FROM finding_scan_state WHERE path = ?", [candidate.path])
    con.execute(
        "INSERT INTO finding_scan_state (path, sha256, scanner_version, scanned_at, findings, recheck_after)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [candidate.path, candidate.sha256, version, now, len(findings), recheck_after],
    )


def delete_session_findings(con: DuckDBPyConnection, user_id: str, session_id: str) -> int:
    """Forget a session's findings and checkpoints (the session was marked private)."""
    paths = [
        r[0]
        for r in con.execute(
            "SELECT path FROM finding_scan_state WHERE path IN"
            " (SELECT session_file FROM session_findings WHERE user_id = ? AND session_id = ?)"
            " OR starts_with(path, ?)",
            [user_id, session_id, f"{user_id}/{session_id}"],
        ).fetchall()
    ]
    deleted = con.execute(
        "DELETE FROM session_findings WHERE user_id = ? AND session_id = ? RETURNING 1", [user_id, session_id]
    ).fetchall()
    if paths:
        con.execute(f"DELETE FROM finding_scan_state WHERE path IN ({', '.join('?' for _ in paths)})", paths)
    return len(deleted)


def list_file_findings(con: DuckDBPyConnection, path: str) -> list[SessionFinding]:
    rows = con.execute(
        f"SELECT {_FINDING_COLUMNS} FROM session_findings WHERE session_file = ? ORDER BY turn_index, finding_type",
        [path],
    ).fetchall()
    return [SessionFinding(*r) for r in rows]


@dataclass(frozen=True)
class SessionSummary(Record):
    """What the usage processor recorded of one transcript file."""

    path: str
    started_at: datetime | None
    ended_at: datetime | None
    active_seconds: float
    primary_model: str
    tool_calls: int
    tool_errors: int
    cc_version: str


def get_session_summary(con: DuckDBPyConnection, path: str) -> SessionSummary | None:
    row = con.execute(
        "SELECT path, started_at, ended_at, active_seconds, primary_model, tool_calls, tool_errors, cc_version"
        " FROM usage_session_summary WHERE path = ?",
        [path],
    ).fetchone()
    return SessionSummary(*row) if row else None


@dataclass(frozen=True)
class SessionListRow(Record):
    """One processed session (its main transcript) with its findings by type."""

    path: str
    user_id: str
    user_email: str | None
    session_id: str
    started_at: datetime | None
    ended_at: datetime | None
    active_seconds: float
    primary_model: str
    tool_calls: int
    findings: dict[str, int]
    total_findings: int


# Sorts of the sessions list: ``recent`` (newest start first) or ``findings`` (most first).
SORTS = {"recent": "s.started_at DESC NULLS LAST, s.path", "findings": "total DESC, s.started_at DESC NULLS LAST"}


def list_sessions(
    con: DuckDBPyConnection,
    *,
    user_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    finding_type: str = "",
    model: str = "",
    sort: str = "recent",
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SessionListRow], int]:
    """Processed main transcripts with their finding counts (a subagent's findings count for
    its session), filtered and sorted; returns the page and the total."""
    clauses = ["s.kind = 'main'"]
    params: list[Any] = []
    if user_id:
        clauses.append("s.user_id = ?")
        params.append(user_id)
    if since is not None:
        clauses.append("s.started_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("s.started_at < ?")
        params.append(until)
    if model:
        clauses.append("s.primary_model = ?")
        params.append(model)
    if finding_type:
        clauses.append("coalesce(list_contains(map_keys(c.counts), ?), false)")
        params.append(finding_type)
    where = " AND ".join(clauses)
    base = (
        " FROM usage_session_summary s"
        " LEFT JOIN (SELECT user_id, session_id, map(list(finding_type), list(n)) AS counts, sum(n) AS total"
        "   FROM (SELECT user_id, session_id, finding_type, count(*) AS n FROM session_findings"
        "         GROUP BY ALL) GROUP BY user_id, session_id) c"
        " ON c.user_id = s.user_id AND c.session_id = s.session_id"
        " LEFT JOIN users u ON u.id = s.user_id"
        f" WHERE {where}"
    )
    total = con.execute(f"SELECT count(*){base}", params).fetchone()[0]  # type: ignore[index]
    rows = con.execute(
        "SELECT s.path, s.user_id, u.email, s.session_id, s.started_at, s.ended_at, s.active_seconds,"
        f" s.primary_model, s.tool_calls, c.counts, coalesce(c.total, 0) AS total{base}"
        f" ORDER BY {SORTS.get(sort, SORTS['recent'])} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    page = [
        SessionListRow(*r[:9], {str(k): int(v) for k, v in (r[9] or {}).items()}, int(r[10]))  # type: ignore[misc]
        for r in rows
    ]
    return page, int(total)


def list_models(con: DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT primary_model FROM usage_session_summary WHERE primary_model <> '' ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def weekly_counts(con: DuckDBPyConnection, since: date) -> list[tuple[date, str, int]]:
    """``(week start (Monday), finding type, count)`` of findings in sessions started since ``since``."""
    rows = con.execute(
        "SELECT date_trunc('week', s.started_at)::DATE AS week, f.finding_type, count(*)"
        " FROM session_findings f JOIN usage_session_summary s ON s.path = f.session_file"
        " WHERE s.started_at >= ? GROUP BY ALL ORDER BY 1, 2",
        [since],
    ).fetchall()
    return [(r[0], r[1], int(r[2])) for r in rows]

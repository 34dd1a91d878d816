"""``marketplace_sync_history``: what each sync of a marketplace did (added, removed, changed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection


@dataclass(frozen=True)
class SyncRecord:
    id: str
    marketplace_id: str
    started_at: datetime
    finished_at: datetime
    status: str
    commit_sha: str | None
    plugin_count: int | None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The result in words: ``13 plugins: 2 added, 1 new version, 1 unavailable, 2 entries skipped``
        (a failed sync: ``failed: <error>``)."""
        if self.status != "ok":
            return f"{self.status}: {self.error or 'unknown error'}"
        count = self.plugin_count or 0
        parts = [
            _count(len(self.added), "added", "added"),
            _count(len(self.removed), "removed", "removed"),
            _count(len(self.changed), "new version", "new versions"),
            _count(len(self.unavailable), "unavailable", "unavailable"),
            _count(len(self.skipped), "entry skipped", "entries skipped"),
        ]
        changes = ", ".join(p for p in parts if p)
        head = f"{count:,} plugin{'s' if count != 1 else ''}"
        return f"{head}: {changes}" if changes else f"{head}, nothing changed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "commit": self.commit_sha,
            "plugin_count": self.plugin_count,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unavailable": self.unavailable,
            "error": self.error,
            "warnings": self.warnings,
            "skipped": self.skipped,
            "summary": self.summary,
        }


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}" if n else ""


# Sync history rows kept per marketplace (older ones are deleted as new ones arrive).
HISTORY_KEEP = 200


def insert_history(con: DuckDBPyConnection, rec: SyncRecord) -> None:
    """Record one sync attempt, dropping the oldest rows beyond :data:`HISTORY_KEEP`."""
    con.execute(
        "DELETE FROM marketplace_sync_history WHERE marketplace_id = ? AND id NOT IN ("
        " SELECT id FROM marketplace_sync_history WHERE marketplace_id = ? ORDER BY finished_at DESC LIMIT ?)",
        [rec.marketplace_id, rec.marketplace_id, HISTORY_KEEP - 1],
    )
    con.execute(
        "INSERT INTO marketplace_sync_history (id, marketplace_id, started_at, finished_at, status, commit_sha,"
        " plugin_count, added, removed, changed, unavailable, error, warnings, skipped)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            rec.id,
            rec.marketplace_id,
            rec.started_at,
            rec.finished_at,
            rec.status,
            rec.commit_sha,
            rec.plugin_count,
            json.dumps(rec.added),
            json.dumps(rec.removed),
            json.dumps(rec.changed),
            json.dumps(rec.unavailable),
            rec.error,
            json.dumps(rec.warnings),
            json.dumps(rec.skipped),
        ],
    )


def list_sync_history(con: DuckDBPyConnection, marketplace_id: str, *, limit: int = 20) -> list[SyncRecord]:
    """Newest first."""
    rows = con.execute(
        "SELECT id, marketplace_id, started_at, finished_at, status, commit_sha, plugin_count, added, removed,"
        " changed, unavailable, error, warnings, skipped FROM marketplace_sync_history WHERE marketplace_id = ?"
        " ORDER BY finished_at DESC LIMIT ?",
        [marketplace_id, limit],
    ).fetchall()
    return [_record(r) for r in rows]


def _record(row: tuple[Any, ...]) -> SyncRecord:
    values = list(row)
    for i in (7, 8, 9, 10, 12, 13):
        values[i] = (json.loads(values[i]) if isinstance(values[i], str) else values[i]) or []
    return SyncRecord(*values)


_COLUMNS = (
    "h.id, h.marketplace_id, h.started_at, h.finished_at, h.status, h.commit_sha, h.plugin_count, h.added,"
    " h.removed, h.changed, h.unavailable, h.error, h.warnings, h.skipped"
)
# A successful sync that added, removed or re-versioned a plugin.
_CHANGED = (
    "h.status = 'ok' AND (coalesce(json_array_length(h.added), 0) + coalesce(json_array_length(h.removed), 0)"
    " + coalesce(json_array_length(h.changed), 0)) > 0"
)


def latest_changes(con: DuckDBPyConnection) -> dict[str, SyncRecord]:
    """Per marketplace, its newest successful sync that added, removed or re-versioned a plugin."""
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM marketplace_sync_history h WHERE {_CHANGED}"
        " QUALIFY row_number() OVER (PARTITION BY h.marketplace_id ORDER BY h.finished_at DESC, h.id DESC) = 1"
    ).fetchall()
    return {r[1]: _record(r) for r in rows}


def list_changes(
    con: DuckDBPyConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[tuple[SyncRecord, str | None]]:
    """Every successful sync that added, removed or re-versioned a plugin, with its marketplace's
    name (None once unregistered), newest first by ``(finished_at, id)``.

    Args:
        since, until: the window on ``finished_at``, naive UTC (``until`` exclusive).
        before: the keyset cursor ``(finished_at, id)`` of the previous page's last row.
    """
    clauses, params = [_CHANGED], []
    if since is not None:
        clauses.append("h.finished_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("h.finished_at < ?")
        params.append(until)
    if before is not None:
        clauses.append("(h.finished_at < ? OR (h.finished_at = ? AND h.id < ?))")
        params += [before[0], before[0], before[1]]
    rows = con.execute(
        f"SELECT {_COLUMNS}, m.name FROM marketplace_sync_history h"
        f" LEFT JOIN marketplace_registry m ON m.id = h.marketplace_id WHERE {' AND '.join(clauses)}"
        " ORDER BY h.finished_at DESC, h.id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [(_record(r[:-1]), r[-1]) for r in rows]

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


def latest_changes(con: DuckDBPyConnection) -> dict[str, SyncRecord]:
    """Per marketplace, its newest successful sync that added, removed or re-versioned a plugin."""
    rows = con.execute(
        "SELECT id, marketplace_id, started_at, finished_at, status, commit_sha, plugin_count, added, removed,"
        " changed, unavailable, error, warnings, skipped FROM marketplace_sync_history"
        " WHERE status = 'ok' AND (coalesce(json_array_length(added), 0) + coalesce(json_array_length(removed), 0)"
        " + coalesce(json_array_length(changed), 0)) > 0"
        " QUALIFY row_number() OVER (PARTITION BY marketplace_id ORDER BY finished_at DESC, id DESC) = 1"
    ).fetchall()
    return {r[1]: _record(r) for r in rows}

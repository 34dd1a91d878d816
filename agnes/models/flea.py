"""``flea_entities``, ``flea_versions``, ``flea_installs``, ``flea_handles``: the flea market.

An entity is what an analyst published (one name per owner); its versions are immutable uploads
with a review status; ``served_version`` names the approved version installers receive.
Visibility (who may see an entity) is decided in :mod:`agnes.flea.visibility`, from these rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import Record

KINDS = ("skill", "agent", "command", "plugin")
VERSION_STATUSES = ("in_review", "approved", "blocked", "review_error")
ENTITY_STATES = ("active", "archived")
# The served marketplace's id of flea plugins: directories ``plugins/flea-<entity id>/``.
MARKETPLACE_ID = "flea"

_ENTITY_COLUMNS = (
    "e.id, e.owner_id, u.email, coalesce(h.handle, ''), e.kind, e.name, e.category, e.description, e.state,"
    " e.served_version, e.created_at, e.updated_at,"
    " (SELECT count(*) FROM flea_installs i WHERE i.entity_id = e.id),"
    " (SELECT max(v.number) FROM flea_versions v WHERE v.entity_id = e.id),"
    " (SELECT v.status FROM flea_versions v WHERE v.entity_id = e.id ORDER BY v.number DESC LIMIT 1),"
    " (SELECT v.sha256 FROM flea_versions v WHERE v.entity_id = e.id AND v.number = e.served_version)"
)
_ENTITY_FROM = (
    " FROM flea_entities e LEFT JOIN users u ON u.id = e.owner_id LEFT JOIN flea_handles h ON h.user_id = e.owner_id"
)


@dataclass(frozen=True)
class Entity(Record):
    """One published entity. ``latest_version``/``latest_status``: its newest upload;
    ``served_sha256``: the sha256 of the served version (None while nothing is approved).
    ``to_dict`` leaves out the owner's e-mail: colleagues know a publisher by the handle."""

    PRIVATE = frozenset({"owner_email"})

    id: str
    owner_id: str
    owner_email: str | None
    owner_handle: str
    kind: str
    name: str
    category: str
    description: str
    state: str
    served_version: int | None
    created_at: datetime
    updated_at: datetime
    install_count: int
    latest_version: int | None
    latest_status: str | None
    served_sha256: str | None

    @property
    def plugin_name(self) -> str:
        """The name Claude Code knows it by: ``<name>-by-<handle>``."""
        return f"{self.name}-by-{self.owner_handle}"

    @property
    def served_label(self) -> str | None:
        """The served version as Claude Code sees it: ``<n>-<sha8>``."""
        if self.served_version is None or not self.served_sha256:
            return None
        return f"{self.served_version}-{self.served_sha256[:8]}"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "plugin_name": self.plugin_name, "served_label": self.served_label}


_VERSION_COLUMNS = (
    "v.id, v.entity_id, v.number, v.sha256, v.size_bytes, v.file_count, v.status, v.note, v.findings, v.verdict,"
    " v.decision, v.decided_by, v.decided_at, v.reason, v.uploaded_by, v.created_at, v.reviewed_at, v.files_deleted_at"
)


@dataclass(frozen=True)
class Version(Record):
    """One upload of an entity. ``findings``: ``[{file, line, rule, severity, message, source}]``
    (source ``scan`` or ``review``); ``verdict``: the reviewer's answer as parsed (None before one)."""

    id: str
    entity_id: str
    number: int
    sha256: str
    size_bytes: int
    file_count: int
    status: str
    note: str
    findings: list[dict[str, Any]]
    verdict: dict[str, Any] | None
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    uploaded_by: str
    created_at: datetime
    reviewed_at: datetime | None
    files_deleted_at: datetime | None

    @property
    def label(self) -> str:
        return f"{self.number}-{self.sha256[:8]}"


def _entity(row: tuple[Any, ...]) -> Entity:
    values = list(row)
    values[12] = int(values[12] or 0)
    return Entity(*values)


def _version(row: tuple[Any, ...]) -> Version:
    values = list(row)
    values[8] = json.loads(values[8] or "[]")
    values[9] = json.loads(values[9]) if values[9] else None
    return Version(*values)


# -- handles ---------------------------------------------------------------------------------


def get_handle(con: DuckDBPyConnection, user_id: str) -> str | None:
    row = con.execute("SELECT handle FROM flea_handles WHERE user_id = ?", [user_id]).fetchone()
    return row[0] if row else None


def handle_taken(con: DuckDBPyConnection, handle: str) -> bool:
    return con.execute("SELECT 1 FROM flea_handles WHERE handle = ?", [handle]).fetchone() is not None


def insert_handle(con: DuckDBPyConnection, user_id: str, handle: str) -> None:
    con.execute("INSERT INTO flea_handles (user_id, handle) VALUES (?, ?)", [user_id, handle])


# -- entities --------------------------------------------------------------------------------


def insert_entity(
    con: DuckDBPyConnection,
    *,
    entity_id: str,
    owner_id: str,
    kind: str,
    name: str,
    category: str,
    description: str,
    now: datetime,
) -> None:
    con.execute(
        "INSERT INTO flea_entities (id, owner_id, kind, name, category, description, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [entity_id, owner_id, kind, name, category, description, now, now],
    )


def get_entity(con: DuckDBPyConnection, entity_id: str) -> Entity | None:
    row = con.execute(f"SELECT {_ENTITY_COLUMNS}{_ENTITY_FROM} WHERE e.id = ?", [entity_id]).fetchone()
    return _entity(row) if row else None


def entity_name_taken(con: DuckDBPyConnection, owner_id: str, name: str) -> bool:
    row = con.execute("SELECT 1 FROM flea_entities WHERE owner_id = ? AND name = ?", [owner_id, name]).fetchone()
    return row is not None


def update_entity(con: DuckDBPyConnection, entity_id: str, now: datetime, **values: Any) -> None:
    """Set columns of ``values`` (``served_version``, ``state``, ``description``, ``category``)."""
    allowed = {"served_version", "state", "description", "category"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not an entity column: {sorted(unknown)}")
    sets = "".join(f"{k} = ?, " for k in values)
    con.execute(f"UPDATE flea_entities SET {sets}updated_at = ? WHERE id = ?", [*values.values(), now, entity_id])


def delete_entity(con: DuckDBPyConnection, entity_id: str) -> None:
    """Delete the entity with its versions and installs."""
    con.execute("DELETE FROM flea_installs WHERE entity_id = ?", [entity_id])
    con.execute("DELETE FROM flea_versions WHERE entity_id = ?", [entity_id])
    con.execute("DELETE FROM flea_entities WHERE id = ?", [entity_id])


# Visible to a viewer: admins all; others the active entities with a served version, their own,
# and archived ones they installed (they keep being served).
_VISIBLE = """(? OR e.owner_id = ? OR (e.served_version IS NOT NULL AND (e.state = 'active'
    OR EXISTS (SELECT 1 FROM flea_installs i WHERE i.entity_id = e.id AND i.user_id = ?))))"""
SORTS = ("recent", "name", "most_installed", "updated")


def is_visible(con: DuckDBPyConnection, entity_id: str, viewer_id: str, is_admin: bool) -> bool:
    row = con.execute(
        f"SELECT 1 FROM flea_entities e WHERE e.id = ? AND {_VISIBLE}", [entity_id, is_admin, viewer_id, viewer_id]
    ).fetchone()
    return row is not None


# Every entity with its install count, newest version and served sha256, in one pass (joins on
# aggregates, not a subquery per row): the flea tab's catalog is built from this.
_ALL_SQL = """
SELECT e.id, e.owner_id, u.email, coalesce(h.handle, ''), e.kind, e.name, e.category, e.description, e.state,
       e.served_version, e.created_at, e.updated_at, coalesce(ic.n, 0), lv.number, lv.status, sv.sha256
FROM flea_entities e
LEFT JOIN users u ON u.id = e.owner_id
LEFT JOIN flea_handles h ON h.user_id = e.owner_id
LEFT JOIN (SELECT entity_id, count(*) AS n FROM flea_installs GROUP BY entity_id) ic ON ic.entity_id = e.id
LEFT JOIN (SELECT entity_id, arg_max(number, number) AS number, arg_max(status, number) AS status
           FROM flea_versions GROUP BY entity_id) lv ON lv.entity_id = e.id
LEFT JOIN flea_versions sv ON sv.entity_id = e.id AND sv.number = e.served_version
ORDER BY e.created_at DESC, e.id
"""


def all_entities(con: DuckDBPyConnection) -> list[Entity]:
    """Every entity, newest first (the caller filters what a viewer may see)."""
    return [_entity(r) for r in con.execute(_ALL_SQL).fetchall()]


def installs_by_user(con: DuckDBPyConnection) -> dict[str, set[str]]:
    """``{user_id: {entity ids installed}}``."""
    found: dict[str, set[str]] = {}
    for user_id, entity_id in con.execute("SELECT user_id, entity_id FROM flea_installs").fetchall():
        found.setdefault(user_id, set()).add(entity_id)
    return found


# -- versions --------------------------------------------------------------------------------


def insert_version(
    con: DuckDBPyConnection,
    *,
    version_id: str,
    entity_id: str,
    number: int,
    sha256: str,
    size_bytes: int,
    file_count: int,
    status: str,
    note: str,
    findings: list[dict[str, Any]],
    uploaded_by: str,
    now: datetime,
) -> None:
    con.execute(
        "INSERT INTO flea_versions (id, entity_id, number, sha256, size_bytes, file_count, status, note, findings,"
        " uploaded_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            version_id,
            entity_id,
            number,
            sha256,
            size_bytes,
            file_count,
            status,
            note,
            json.dumps(findings),
            uploaded_by,
            now,
        ],
    )


def get_version(con: DuckDBPyConnection, version_id: str) -> Version | None:
    row = con.execute(f"SELECT {_VERSION_COLUMNS} FROM flea_versions v WHERE v.id = ?", [version_id]).fetchone()
    return _version(row) if row else None


def get_version_number(con: DuckDBPyConnection, entity_id: str, number: int) -> Version | None:
    row = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM flea_versions v WHERE v.entity_id = ? AND v.number = ?", [entity_id, number]
    ).fetchone()
    return _version(row) if row else None


def list_versions(con: DuckDBPyConnection, entity_id: str) -> list[Version]:
    """Newest first."""
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM flea_versions v WHERE v.entity_id = ? ORDER BY v.number DESC", [entity_id]
    ).fetchall()
    return [_version(r) for r in rows]


def update_version(con: DuckDBPyConnection, version_id: str, **values: Any) -> None:
    """Set columns of ``values``; ``findings`` and ``verdict`` are stored as JSON."""
    allowed = {
        "status",
        "note",
        "findings",
        "verdict",
        "decision",
        "decided_by",
        "decided_at",
        "reason",
        "reviewed_at",
        "files_deleted_at",
    }
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"not a version column: {sorted(unknown)}")
    params = [json.dumps(v) if k in ("findings", "verdict") and v is not None else v for k, v in values.items()]
    sets = ", ".join(f"{k} = ?" for k in values)
    con.execute(f"UPDATE flea_versions SET {sets} WHERE id = ?", [*params, version_id])


def count_blocked_since(con: DuckDBPyConnection, user_id: str, since: datetime) -> int:
    """Versions of ``user_id`` blocked since ``since`` plus uploads the static scan refused
    (their ``flea.security_blocked`` audit rows): what the spam quota counts."""
    row = con.execute(
        "SELECT (SELECT count(*) FROM flea_versions WHERE uploaded_by = ? AND status = 'blocked' AND created_at >= ?)"
        " + (SELECT count(*) FROM audit_log WHERE user_id = ? AND action = 'flea.security_blocked'"
        " AND timestamp >= ?)",
        [user_id, since, user_id, since],
    ).fetchone()
    return int(row[0]) if row else 0


def stuck_reviews(con: DuckDBPyConnection, before: datetime) -> list[Version]:
    """Versions in review (no administrator decision) uploaded before ``before``."""
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM flea_versions v WHERE v.status = 'in_review' AND v.decision IS NULL"
        " AND coalesce(v.reviewed_at, v.created_at) < ? ORDER BY v.created_at",
        [before],
    ).fetchall()
    return [_version(r) for r in rows]


def blocked_with_files(con: DuckDBPyConnection, before: datetime) -> list[Version]:
    """Blocked versions decided or reviewed before ``before`` whose files are still stored."""
    rows = con.execute(
        f"SELECT {_VERSION_COLUMNS} FROM flea_versions v WHERE v.status = 'blocked' AND v.files_deleted_at IS NULL"
        " AND coalesce(v.decided_at, v.reviewed_at, v.created_at) < ? ORDER BY v.created_at",
        [before],
    ).fetchall()
    return [_version(r) for r in rows]


# -- installs --------------------------------------------------------------------------------


def add_install(con: DuckDBPyConnection, entity_id: str, user_id: str, now: datetime) -> bool:
    """True when a new install row was written (False: already installed)."""
    if is_installed(con, entity_id, user_id):
        return False
    con.execute(
        "INSERT INTO flea_installs (entity_id, user_id, created_at) VALUES (?, ?, ?)", [entity_id, user_id, now]
    )
    return True


def remove_install(con: DuckDBPyConnection, entity_id: str, user_id: str) -> bool:
    """True when an install row was removed."""
    if not is_installed(con, entity_id, user_id):
        return False
    con.execute("DELETE FROM flea_installs WHERE entity_id = ? AND user_id = ?", [entity_id, user_id])
    return True


def is_installed(con: DuckDBPyConnection, entity_id: str, user_id: str) -> bool:
    row = con.execute(
        "SELECT 1 FROM flea_installs WHERE entity_id = ? AND user_id = ?", [entity_id, user_id]
    ).fetchone()
    return row is not None


# -- served rows (agnes.models.served) -------------------------------------------------------

# Rows in the served marketplace's shape: (marketplace_id, name, manifest_name, version,
# description, content_dir, content_hash, raw). Only approved, served versions of entities the
# user installed (archived ones included: archiving keeps serving installers).
_SERVED_COLUMNS = (
    "'flea', e.id, e.name || '-by-' || h.handle, CAST(e.served_version AS VARCHAR) || '-' || v.sha256[1:8],"
    " e.description, 'flea/store/' || e.id || '/v' || CAST(e.served_version AS VARCHAR), v.sha256,"
    " json_object('description', e.description, 'category', e.category, 'author', json_object('name', h.handle))"
)
_SERVED_JOIN = (
    " FROM flea_installs i JOIN flea_entities e ON e.id = i.entity_id"
    " JOIN flea_handles h ON h.user_id = e.owner_id"
    " JOIN flea_versions v ON v.entity_id = e.id AND v.number = e.served_version"
    " WHERE v.status = 'approved' AND v.files_deleted_at IS NULL"
)


def served_rows(con: DuckDBPyConnection, user_id: str) -> list[tuple[Any, ...]]:
    """One user's served flea plugins, by entity id."""
    return con.execute(f"SELECT {_SERVED_COLUMNS}{_SERVED_JOIN} AND i.user_id = ? ORDER BY e.id", [user_id]).fetchall()


def all_served_rows(con: DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every active user's served flea plugins: ``{user_id: rows}``."""
    by_user: dict[str, list[tuple[Any, ...]]] = {}
    rows = con.execute(
        f"SELECT i.user_id, {_SERVED_COLUMNS}{_SERVED_JOIN}"
        " AND i.user_id IN (SELECT id FROM users WHERE active) ORDER BY i.user_id, e.id"
    ).fetchall()
    for row in rows:
        by_user.setdefault(row[0], []).append(row[1:])
    return by_user


def plugin_names(con: DuckDBPyConnection) -> dict[str, tuple[str, str]]:
    """``{<name>-by-<handle>: (entity id, name)}`` of every entity (telemetry attribution)."""
    rows = con.execute(
        "SELECT e.name || '-by-' || h.handle, e.id, e.name FROM flea_entities e"
        " JOIN flea_handles h ON h.user_id = e.owner_id"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}

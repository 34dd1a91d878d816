"""``marketplace_registry``, ``marketplace_plugins`` and ``marketplace_sync_history``.

A marketplace's id is its slug (immutable), so plugin resource ids are ``<slug>/<plugin>``.
Plugins are written only by a successful sync (:func:`apply_sync`), in the same unit as
the registry row, so readers never see a half-applied sync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import new_id, system_plugins, utcnow
from agnes.models.marketplace_history import SyncRecord, insert_history


@dataclass(frozen=True)
class Marketplace:
    id: str
    name: str
    url: str
    branch: str | None
    token_env: str | None
    description: str
    curator_name: str
    curator_email: str
    registered_by: str | None
    registered_at: datetime
    updated_at: datetime
    last_synced_at: datetime | None
    last_commit_sha: str | None
    checkout_dir: str | None
    last_error: str | None
    last_error_at: datetime | None
    plugin_count: int = 0

    @property
    def slug(self) -> str:
        return self.id

    def to_dict(self) -> dict[str, Any]:
        """The API shape (the token's variable name and the checkout path stay internal)."""
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "url": self.url,
            "branch": self.branch,
            "description": self.description,
            "curator_name": self.curator_name,
            "curator_email": self.curator_email,
            "registered_at": self.registered_at.isoformat(),
            "last_synced_at": self.last_synced_at.isoformat() if self.last_synced_at else None,
            "last_commit_sha": self.last_commit_sha,
            "last_error": self.last_error,
            "plugin_count": self.plugin_count,
        }


@dataclass(frozen=True)
class Plugin:
    marketplace_id: str
    name: str
    manifest_name: str
    description: str
    version: str | None
    author_name: str | None
    homepage: str | None
    category: str | None
    source_kind: str
    source_spec: Any
    skill_count: int
    agent_count: int
    command_count: int
    raw: dict[str, Any]
    available: bool
    unavailable_reason: str | None
    content_dir: str | None
    content_hash: str | None
    file_count: int
    size_bytes: int
    is_system: bool
    created_at: datetime
    updated_at: datetime

    @property
    def resource_id(self) -> str:
        return f"{self.marketplace_id}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """The API shape (``id`` is the resource id ``<slug>/<plugin>``)."""
        return {
            "id": self.resource_id,
            "marketplace": self.marketplace_id,
            "name": self.name,
            "manifest_name": self.manifest_name,
            "description": self.description,
            "version": self.version,
            "author": self.author_name,
            "homepage": self.homepage,
            "category": self.category,
            "source_kind": self.source_kind,
            "source": self.source_spec,
            "skills": self.skill_count,
            "agents": self.agent_count,
            "commands": self.command_count,
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "files": self.file_count,
            "size_bytes": self.size_bytes,
            "is_system": self.is_system,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class PluginRecord:
    """What a sync found for one manifest entry (input of :func:`apply_sync`)."""

    name: str
    manifest_name: str
    source_kind: str
    source_spec: Any
    raw: dict[str, Any]
    description: str = ""
    version: str | None = None
    author_name: str | None = None
    homepage: str | None = None
    category: str | None = None
    skill_count: int = 0
    agent_count: int = 0
    command_count: int = 0
    available: bool = True
    unavailable_reason: str | None = None
    content_dir: str | None = None
    content_hash: str | None = None
    file_count: int = 0
    size_bytes: int = 0


_MP_SELECT = """
SELECT m.id, m.name, m.url, m.branch, m.token_env, m.description, m.curator_name, m.curator_email,
       m.registered_by, m.registered_at, m.updated_at, m.last_synced_at, m.last_commit_sha, m.checkout_dir,
       m.last_error, m.last_error_at,
       (SELECT count(*) FROM marketplace_plugins p WHERE p.marketplace_id = m.id) AS plugin_count
FROM marketplace_registry m
"""

_PLUGIN_COLUMNS = (
    "marketplace_id, name, manifest_name, description, version, author_name, homepage, category, source_kind,"
    " source_spec, skill_count, agent_count, command_count, raw, available, unavailable_reason, content_dir,"
    " content_hash, file_count, size_bytes, is_system, created_at, updated_at"
)

# Registry columns an update may set.
UPDATABLE = ("name", "url", "branch", "token_env", "description", "curator_name", "curator_email")


def _load(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _plugin(row: tuple[Any, ...]) -> Plugin:
    values = list(row)
    values[9] = _load(values[9])
    values[13] = _load(values[13]) or {}
    return Plugin(*values)


def list_marketplaces(con: DuckDBPyConnection) -> list[Marketplace]:
    """All marketplaces in registration order."""
    return [Marketplace(*r) for r in con.execute(_MP_SELECT + " ORDER BY m.registered_at, m.id").fetchall()]


def get_marketplace(con: DuckDBPyConnection, marketplace_id: str) -> Marketplace | None:
    row = con.execute(_MP_SELECT + " WHERE m.id = ?", [marketplace_id]).fetchone()
    return Marketplace(*row) if row else None


def create_marketplace(
    con: DuckDBPyConnection,
    *,
    slug: str,
    name: str,
    url: str,
    branch: str | None,
    token_env: str | None,
    description: str,
    curator_name: str,
    curator_email: str,
    registered_by: str | None,
) -> Marketplace:
    """Insert a registry row. Raises ``duckdb.ConstraintException`` when the slug exists."""
    con.execute(
        "INSERT INTO marketplace_registry (id, name, url, branch, token_env, description, curator_name,"
        " curator_email, registered_by, registered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            slug,
            name,
            url,
            branch,
            token_env,
            description,
            curator_name,
            curator_email,
            registered_by,
            utcnow(),
            utcnow(),
        ],
    )
    created = get_marketplace(con, slug)
    assert created is not None
    return created


def update_marketplace(con: DuckDBPyConnection, marketplace_id: str, changes: dict[str, Any]) -> None:
    """Set the given :data:`UPDATABLE` columns (unknown keys raise ValueError)."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    for column, value in changes.items():
        # Column names come from the UPDATABLE allowlist above, never from input.
        con.execute(f"UPDATE marketplace_registry SET {column} = ? WHERE id = ?", [value, marketplace_id])
    con.execute("UPDATE marketplace_registry SET updated_at = ? WHERE id = ?", [utcnow(), marketplace_id])


def delete_marketplace(con: DuckDBPyConnection, marketplace_id: str) -> dict[str, int]:
    """Delete a marketplace with its plugins, grants, subscriptions and history.

    Grants are matched with ``starts_with`` (not LIKE: ``_`` would be a wildcard).
    Returns counts of deleted ``plugins``, ``grants`` and ``subscriptions``.
    """
    prefix = marketplace_id + "/"
    plugins = con.execute(
        "DELETE FROM marketplace_plugins WHERE marketplace_id = ? RETURNING name", [marketplace_id]
    ).fetchall()
    grants = con.execute(
        "DELETE FROM resource_grants WHERE resource_type = 'marketplace_plugin' AND starts_with(resource_id, ?)"
        " RETURNING id",
        [prefix],
    ).fetchall()
    subs = con.execute(
        "DELETE FROM user_plugin_subscriptions WHERE marketplace_id = ? RETURNING user_id", [marketplace_id]
    ).fetchall()
    con.execute("DELETE FROM marketplace_sync_history WHERE marketplace_id = ?", [marketplace_id])
    system_plugins.delete_marketplace_marks(con, marketplace_id)
    con.execute("DELETE FROM marketplace_registry WHERE id = ?", [marketplace_id])
    return {"plugins": len(plugins), "grants": len(grants), "subscriptions": len(subs)}


# -- plugins ---------------------------------------------------------------------------------


def list_plugins(con: DuckDBPyConnection, marketplace_id: str | None = None) -> list[Plugin]:
    """Plugins of one marketplace (or all), by marketplace registration order then name."""
    sql = (
        f"SELECT {', '.join('p.' + c.strip() for c in _PLUGIN_COLUMNS.split(','))}"
        " FROM marketplace_plugins p JOIN marketplace_registry m ON m.id = p.marketplace_id"
    )
    params: list[Any] = []
    if marketplace_id is not None:
        sql += " WHERE p.marketplace_id = ?"
        params.append(marketplace_id)
    sql += " ORDER BY m.registered_at, m.id, p.name"
    return [_plugin(r) for r in con.execute(sql, params).fetchall()]


def get_plugin(con: DuckDBPyConnection, marketplace_id: str, name: str) -> Plugin | None:
    row = con.execute(
        f"SELECT {_PLUGIN_COLUMNS} FROM marketplace_plugins WHERE marketplace_id = ? AND name = ?",
        [marketplace_id, name],
    ).fetchone()
    return _plugin(row) if row else None


def set_plugin_system(con: DuckDBPyConnection, marketplace_id: str, name: str, is_system: bool) -> None:
    con.execute(
        "UPDATE marketplace_plugins SET is_system = ?, updated_at = ? WHERE marketplace_id = ? AND name = ?",
        [is_system, utcnow(), marketplace_id, name],
    )


def apply_sync(
    con: DuckDBPyConnection,
    marketplace_id: str,
    *,
    commit_sha: str,
    checkout_dir: str,
    records: list[PluginRecord],
    started_at: datetime,
    skipped: list[dict[str, str]] | None = None,
) -> SyncRecord:
    """Replace a marketplace's plugins with a sync's result and record what changed.

    ``skipped``: the manifest entries that are not plugins (``[{"name", "reason"}]``), kept in
    the history row.

    ``created_at`` of surviving plugins is kept. Rows missing upstream are deleted (their grants
    and subscriptions stay, so a plugin that comes back is served again). The system mark is kept
    by resource id (:mod:`agnes.models.system_plugins`): a marked plugin missing upstream comes
    back marked, and the history's ``warnings`` say it is missing.
    """
    now = utcnow()
    old = {p.name: p for p in list_plugins(con, marketplace_id)}
    new_names = {r.name for r in records}
    marked = system_plugins.marked_names(con, marketplace_id)
    for record in records:
        previous = old.get(record.name)
        values = [
            record.manifest_name,
            record.description,
            record.version,
            record.author_name,
            record.homepage,
            record.category,
            record.source_kind,
            json.dumps(record.source_spec),
            record.skill_count,
            record.agent_count,
            record.command_count,
            json.dumps(record.raw),
            record.available,
            record.unavailable_reason,
            record.content_dir,
            record.content_hash,
            record.file_count,
            record.size_bytes,
        ]
        if previous is None:
            con.execute(
                "INSERT INTO marketplace_plugins (manifest_name, description, version, author_name, homepage,"
                " category, source_kind, source_spec, skill_count, agent_count, command_count, raw, available,"
                " unavailable_reason, content_dir, content_hash, file_count, size_bytes, marketplace_id, name,"
                " created_at, updated_at, is_system)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*values, marketplace_id, record.name, now, now, record.name in marked],
            )
        else:
            con.execute(
                "UPDATE marketplace_plugins SET manifest_name = ?, description = ?, version = ?, author_name = ?,"
                " homepage = ?, category = ?, source_kind = ?, source_spec = ?, skill_count = ?, agent_count = ?,"
                " command_count = ?, raw = ?, available = ?, unavailable_reason = ?, content_dir = ?,"
                " content_hash = ?, file_count = ?, size_bytes = ?, updated_at = ?"
                " WHERE marketplace_id = ? AND name = ?",
                [*values, now, marketplace_id, record.name],
            )
    for name in sorted(set(old) - new_names):
        con.execute("DELETE FROM marketplace_plugins WHERE marketplace_id = ? AND name = ?", [marketplace_id, name])
    missing = marked - new_names
    system_plugins.set_missing(con, marketplace_id, missing, marked & new_names)
    warnings = [
        f"System plugin '{name}' is missing upstream: nobody is served it until it comes back; it keeps its"
        " system mark (unmark it if it is gone for good)."
        for name in sorted(missing)
    ]
    con.execute(
        "UPDATE marketplace_registry SET last_synced_at = ?, last_commit_sha = ?, checkout_dir = ?,"
        " last_error = NULL, last_error_at = NULL WHERE id = ?",
        [now, commit_sha, checkout_dir, marketplace_id],
    )
    changed = [
        {"name": r.name, "from": old[r.name].version, "to": r.version}
        for r in records
        if r.name in old and old[r.name].version != r.version
    ]
    history = SyncRecord(
        id=new_id(),
        marketplace_id=marketplace_id,
        started_at=started_at,
        finished_at=now,
        status="ok",
        commit_sha=commit_sha,
        plugin_count=len(records),
        added=sorted(new_names - set(old)),
        removed=sorted(set(old) - new_names),
        changed=changed,
        unavailable=[{"name": r.name, "reason": r.unavailable_reason} for r in records if not r.available],
        warnings=warnings,
        skipped=list(skipped or []),
    )
    insert_history(con, history)
    return history


def record_sync_failure(
    con: DuckDBPyConnection,
    marketplace_id: str,
    *,
    error: str,
    started_at: datetime,
    status: str = "failed",
    skipped: list[dict[str, str]] | None = None,
) -> SyncRecord:
    """Note a failed (or ``interrupted``) sync on the registry row (plugins untouched) and in the history
    (with the manifest entries it skipped, when it got as far as reading them)."""
    now = utcnow()
    con.execute(
        "UPDATE marketplace_registry SET last_error = ?, last_error_at = ? WHERE id = ?",
        [error, now, marketplace_id],
    )
    history = SyncRecord(
        id=new_id(),
        marketplace_id=marketplace_id,
        started_at=started_at,
        finished_at=now,
        status=status,
        commit_sha=None,
        plugin_count=None,
        error=error,
        skipped=list(skipped or []),
    )
    insert_history(con, history)
    return history

"""The rows of served marketplaces: which plugins each user's Claude Code receives.

served = (plugins granted to any of the user's groups ∩ the user's subscriptions) ∪ system plugins
∪ the user's approved flea-market installs, available plugins with files only (DESIGN.md, "The
served marketplace"). The Admin group has no shortcut here. Rows are ``(marketplace_id, name,
manifest_name, version, description, content_dir, content_hash, raw)`` in serving order (curated:
marketplace registration, then slug, then plugin name; then flea entities by id, marketplace id
``flea``: :func:`agnes.models.flea.served_rows`).
"""

from __future__ import annotations

from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import flea
from agnes.models.groups import EVERYONE_GROUP_ID

_PLUGIN_COLUMNS = (
    "p.marketplace_id, p.name, p.manifest_name, p.version, p.description, p.content_dir, p.content_hash, p.raw"
)


def _served_condition(user: str, in_groups: str) -> str:
    """The served rule over ``p`` for the user ``user`` whose groups satisfy ``in_groups``
    (both SQL expressions written here, never input)."""
    return f"""p.available AND p.content_dir IS NOT NULL
  AND (p.is_system OR (
        EXISTS (SELECT 1 FROM user_plugin_subscriptions s
                WHERE s.user_id = {user} AND s.marketplace_id = p.marketplace_id AND s.plugin_name = p.name)
    AND EXISTS (SELECT 1 FROM resource_grants r
                WHERE r.resource_type = 'marketplace_plugin'
                  AND r.resource_id = p.marketplace_id || '/' || p.name
                  AND (r.group_id = '{EVERYONE_GROUP_ID}' OR {in_groups}))))"""


# One user, with the caller's resolved group ids as a list parameter.
_SERVED_SQL = f"""
SELECT {_PLUGIN_COLUMNS}
FROM marketplace_plugins p JOIN marketplace_registry m ON m.id = p.marketplace_id
WHERE {_served_condition("?", "list_contains(?, r.group_id)")}
ORDER BY m.registered_at, m.id, p.name
"""
# Every active user, with their member rows.
_ALL_SERVED_SQL = f"""
SELECT u.id, {_PLUGIN_COLUMNS}
FROM users u
JOIN marketplace_plugins p ON TRUE
JOIN marketplace_registry m ON m.id = p.marketplace_id
WHERE u.active AND {
    _served_condition("u.id", "r.group_id IN (SELECT gm.group_id FROM user_group_members gm WHERE gm.user_id = u.id)")
}
ORDER BY u.id, m.registered_at, m.id, p.name
"""


def served_plugin_rows(con: DuckDBPyConnection, user_id: str, group_ids: list[str]) -> list[tuple[Any, ...]]:
    """One user's served plugin rows (``group_ids`` as resolved for the caller)."""
    return con.execute(_SERVED_SQL, [user_id, list(group_ids)]).fetchall() + flea.served_rows(con, user_id)


def all_served_plugin_rows(con: DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every active user's served plugin rows in one statement: ``{user_id: rows}`` (users served
    nothing are absent)."""
    by_user: dict[str, list[tuple[Any, ...]]] = {}
    for row in con.execute(_ALL_SERVED_SQL).fetchall():
        by_user.setdefault(row[0], []).append(row[1:])
    for user_id, rows in flea.all_served_rows(con).items():
        by_user.setdefault(user_id, []).extend(rows)
    return by_user


_SYSTEM_SQL = f"""
SELECT {_PLUGIN_COLUMNS}
FROM marketplace_plugins p JOIN marketplace_registry m ON m.id = p.marketplace_id
WHERE p.is_system AND p.available AND p.content_dir IS NOT NULL
ORDER BY m.registered_at, m.id, p.name
"""


def system_plugin_rows(con: DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """The served rows of the system plugins (every user's served marketplace has them), in serving order."""
    return con.execute(_SYSTEM_SQL).fetchall()


def count_active_users(con: DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM users WHERE active").fetchone()
    return int(row[0]) if row else 0


_USERS_SERVED_SQL = f"""
SELECT u.id, u.email FROM users u JOIN marketplace_plugins p ON p.marketplace_id = ? AND p.name = ?
WHERE u.active AND {
    _served_condition("u.id", "r.group_id IN (SELECT gm.group_id FROM user_group_members gm WHERE gm.user_id = u.id)")
}
ORDER BY u.email
"""


def users_served(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> list[tuple[str, str]]:
    """``(user id, email)`` of every active user whose served marketplace has the plugin, by email."""
    return [(r[0], r[1]) for r in con.execute(_USERS_SERVED_SQL, [marketplace_id, plugin_name]).fetchall()]

"""Read-only queries behind the analysts' marketplace pages (over the curated-marketplace tables).

The tables belong to the curated-marketplace models (:mod:`agnes.models.marketplaces`,
:mod:`agnes.models.subscriptions`); this module only adds the few reads the browsing pages
need in their single state-store unit per request.
"""

from __future__ import annotations

from typing import Any

from duckdb import DuckDBPyConnection

# Changes whenever a sync, an edit of a registry row or a system flag changes what a card shows:
# every such write sets updated_at / last_synced_at, and deletes change the counts.
_VERSION_SQL = """
SELECT (SELECT count(*) FROM marketplace_plugins),
       (SELECT max(updated_at) FROM marketplace_plugins),
       (SELECT count(*) FROM marketplace_registry),
       (SELECT max(updated_at) FROM marketplace_registry),
       (SELECT max(last_synced_at) FROM marketplace_registry)
"""


def cards_version(con: DuckDBPyConnection) -> tuple[Any, ...]:
    """A value that changes whenever any plugin card's content may have changed."""
    row = con.execute(_VERSION_SQL).fetchone()
    return tuple(row) if row else ()


def viewer_plugin_ids(con: DuckDBPyConnection, user_id: str, group_ids: list[str]) -> tuple[set[str], set[str]]:
    """Plugin ids (``<slug>/<plugin>``) granted to any of ``group_ids``, and those ``user_id`` subscribed to.

    One query: rows tagged ``g`` (granted) or ``s`` (subscribed).
    """
    if not group_ids:
        group_ids = [""]
    placeholders = ", ".join("?" for _ in group_ids)
    rows = con.execute(
        "SELECT 'g', resource_id FROM resource_grants WHERE resource_type = 'marketplace_plugin'"
        f" AND group_id IN ({placeholders})"
        " UNION ALL SELECT 's', marketplace_id || '/' || plugin_name FROM user_plugin_subscriptions WHERE user_id = ?",
        [*group_ids, user_id],
    ).fetchall()
    granted = {r[1] for r in rows if r[0] == "g"}
    subscribed = {r[1] for r in rows if r[0] == "s"}
    return granted, subscribed


def list_admin_contacts(con: DuckDBPyConnection, *, limit: int = 5) -> list[tuple[str, str]]:
    """``(name, email)`` of active administrators, for "who to ask" hints."""
    rows = con.execute(
        "SELECT coalesce(nullif(u.name, ''), u.email), u.email FROM users u WHERE u.active AND EXISTS"
        " (SELECT 1 FROM user_group_members m WHERE m.user_id = u.id AND m.group_id = 'admin')"
        " ORDER BY u.email LIMIT ?",
        [limit],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def list_plugin_labels(con: DuckDBPyConnection) -> list[tuple[str, str, str, bool]]:
    """``(resource id, plugin.json name, marketplace name, is_system)`` of every plugin, in listing
    order, without reading their JSON columns (the access page lists them all)."""
    rows = con.execute(
        "SELECT p.marketplace_id || '/' || p.name, p.manifest_name, m.name, p.is_system"
        " FROM marketplace_plugins p JOIN marketplace_registry m ON m.id = p.marketplace_id"
        " ORDER BY m.registered_at, m.id, p.name"
    ).fetchall()
    return [(r[0], r[1], r[2], bool(r[3])) for r in rows]

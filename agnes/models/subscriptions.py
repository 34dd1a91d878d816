"""``user_plugin_subscriptions``: the curated plugins an analyst put in their stack.

A subscription alone serves nothing: the resolver intersects it with the grants of the
user's groups (DESIGN.md, "The served marketplace"). The ``Everyone`` group has no member
rows, so "has a grant through any of the user's groups" is spelled out in SQL below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes.models import utcnow
from agnes.models.groups import EVERYONE_GROUP_ID

# SQL true when user ``s.user_id`` reaches plugin ``s.marketplace_id/s.plugin_name`` through a grant.
_HAS_ACCESS = f"""
EXISTS (
    SELECT 1 FROM resource_grants r
    WHERE r.resource_type = 'marketplace_plugin'
      AND r.resource_id = s.marketplace_id || '/' || s.plugin_name
      AND (r.group_id = '{EVERYONE_GROUP_ID}'
           OR r.group_id IN (SELECT m.group_id FROM user_group_members m WHERE m.user_id = s.user_id))
)
"""


@dataclass(frozen=True)
class Subscription:
    user_id: str
    marketplace_id: str
    plugin_name: str
    subscribed_at: datetime
    origin: str = "manual"  # or 'system_fanout' (see agnes.models.grants)


def subscribe(
    con: DuckDBPyConnection, user_id: str, marketplace_id: str, plugin_name: str, *, origin: str = "manual"
) -> bool:
    """Add a subscription; False when it already existed."""
    row = con.execute(
        "INSERT INTO user_plugin_subscriptions (user_id, marketplace_id, plugin_name, subscribed_at, origin)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING user_id",
        [user_id, marketplace_id, plugin_name, utcnow(), origin],
    ).fetchone()
    return row is not None


def unsubscribe(con: DuckDBPyConnection, user_id: str, marketplace_id: str, plugin_name: str) -> bool:
    """Remove a subscription; False when there was none."""
    row = con.execute(
        "DELETE FROM user_plugin_subscriptions WHERE user_id = ? AND marketplace_id = ? AND plugin_name = ?"
        " RETURNING user_id",
        [user_id, marketplace_id, plugin_name],
    ).fetchone()
    return row is not None


def list_subscriptions(con: DuckDBPyConnection, user_id: str) -> list[Subscription]:
    rows = con.execute(
        "SELECT user_id, marketplace_id, plugin_name, subscribed_at, origin FROM user_plugin_subscriptions"
        " WHERE user_id = ? ORDER BY marketplace_id, plugin_name",
        [user_id],
    ).fetchall()
    return [Subscription(*r) for r in rows]


def drop_without_access(
    con: DuckDBPyConnection,
    *,
    marketplace_id: str | None = None,
    plugin_name: str | None = None,
    resource_ids: list[str] | None = None,
    user_id: str | None = None,
) -> int:
    """Delete subscriptions whose user no longer reaches the plugin through any group.

    Narrow it to one plugin or several (``resource_ids``, ``<slug>/<plugin>``: after grants are
    revoked) or one user (after a membership change). System plugins keep their subscriptions.
    Returns how many rows went.
    """
    clauses = [f"NOT {_HAS_ACCESS}"]
    params: list[Any] = []
    if marketplace_id is not None and plugin_name is not None:
        clauses.append("s.marketplace_id = ? AND s.plugin_name = ?")
        params += [marketplace_id, plugin_name]
    if resource_ids is not None:
        clauses.append("list_contains(?, s.marketplace_id || '/' || s.plugin_name)")
        params.append(list(resource_ids))
    if user_id is not None:
        clauses.append("s.user_id = ?")
        params.append(user_id)
    clauses.append(
        "NOT EXISTS (SELECT 1 FROM marketplace_plugins p WHERE p.marketplace_id = s.marketplace_id"
        " AND p.name = s.plugin_name AND p.is_system)"
    )
    rows = con.execute(
        "DELETE FROM user_plugin_subscriptions s WHERE " + " AND ".join(clauses) + " RETURNING s.user_id",
        params,
    ).fetchall()
    return len(rows)


def subscribe_all_users(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> int:
    """Subscribe every user to a plugin (system fan-out, origin ``system_fanout``) in one statement;
    returns how many rows are new (users already subscribed keep their row and its origin)."""
    rows = con.execute(
        "INSERT INTO user_plugin_subscriptions (user_id, marketplace_id, plugin_name, subscribed_at, origin)"
        " SELECT id, ?, ?, ?, 'system_fanout' FROM users ON CONFLICT DO NOTHING RETURNING user_id",
        [marketplace_id, plugin_name, utcnow()],
    ).fetchall()
    return len(rows)


def count_by_origin(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> dict[str, int]:
    """``{origin: subscriptions}`` of one plugin."""
    rows = con.execute(
        "SELECT origin, count(*) FROM user_plugin_subscriptions WHERE marketplace_id = ? AND plugin_name = ?"
        " GROUP BY origin",
        [marketplace_id, plugin_name],
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def count_unsubscribed_users(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> int:
    """Users not subscribed to a plugin (those a system mark would subscribe)."""
    row = con.execute(
        "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM user_plugin_subscriptions s"
        " WHERE s.user_id = u.id AND s.marketplace_id = ? AND s.plugin_name = ?)",
        [marketplace_id, plugin_name],
    ).fetchone()
    return int(row[0]) if row else 0


def delete_fanout(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> int:
    """Delete the ``system_fanout`` subscriptions of one plugin; returns how many went."""
    rows = con.execute(
        "DELETE FROM user_plugin_subscriptions WHERE marketplace_id = ? AND plugin_name = ?"
        " AND origin = 'system_fanout' RETURNING user_id",
        [marketplace_id, plugin_name],
    ).fetchall()
    return len(rows)


def subscribers(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> set[str]:
    """Ids of the users subscribed to a plugin."""
    rows = con.execute(
        "SELECT user_id FROM user_plugin_subscriptions WHERE marketplace_id = ? AND plugin_name = ?",
        [marketplace_id, plugin_name],
    ).fetchall()
    return {r[0] for r in rows}

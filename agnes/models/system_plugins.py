"""``system_plugins``: curated plugins every user gets, marked by resource id.

``marketplace_plugins.is_system`` mirrors this table for the plugins the last sync found; a
marked plugin missing upstream keeps its row here (``missing_since``), so when it comes back
it is still marked (see :func:`agnes.models.marketplaces.apply_sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import utcnow
from agnes.models.grants import NEW_ID_SQL, SYSTEM_FANOUT


@dataclass(frozen=True)
class SystemMark:
    marketplace_id: str
    plugin_name: str
    marked_at: datetime
    marked_by: str | None
    missing_since: datetime | None

    @property
    def resource_id(self) -> str:
        return f"{self.marketplace_id}/{self.plugin_name}"


def mark(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str, *, marked_by: str | None) -> bool:
    """Mark a plugin system (and its ``marketplace_plugins`` row); False when it already was."""
    row = con.execute(
        "INSERT INTO system_plugins (marketplace_id, plugin_name, marked_at, marked_by) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING plugin_name",
        [marketplace_id, plugin_name, utcnow(), marked_by],
    ).fetchone()
    _mirror(con, marketplace_id, plugin_name, True)
    return row is not None


def unmark(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str) -> bool:
    """Remove the mark; False when the plugin was not marked."""
    row = con.execute(
        "DELETE FROM system_plugins WHERE marketplace_id = ? AND plugin_name = ? RETURNING plugin_name",
        [marketplace_id, plugin_name],
    ).fetchone()
    _mirror(con, marketplace_id, plugin_name, False)
    return row is not None


def _mirror(con: DuckDBPyConnection, marketplace_id: str, plugin_name: str, value: bool) -> None:
    con.execute(
        "UPDATE marketplace_plugins SET is_system = ?, updated_at = ? WHERE marketplace_id = ? AND name = ?"
        " AND is_system <> ?",
        [value, utcnow(), marketplace_id, plugin_name, value],
    )


def list_marks(con: DuckDBPyConnection, marketplace_id: str | None = None) -> list[SystemMark]:
    sql = "SELECT marketplace_id, plugin_name, marked_at, marked_by, missing_since FROM system_plugins"
    params: list[object] = []
    if marketplace_id is not None:
        sql += " WHERE marketplace_id = ?"
        params.append(marketplace_id)
    return [SystemMark(*r) for r in con.execute(sql + " ORDER BY marketplace_id, plugin_name", params).fetchall()]


def marked_names(con: DuckDBPyConnection, marketplace_id: str) -> set[str]:
    rows = con.execute("SELECT plugin_name FROM system_plugins WHERE marketplace_id = ?", [marketplace_id]).fetchall()
    return {r[0] for r in rows}


def set_missing(con: DuckDBPyConnection, marketplace_id: str, missing: set[str], present: set[str]) -> None:
    """After a sync: note when marked plugins went missing upstream, clear it for those back."""
    if missing:
        con.execute(
            "UPDATE system_plugins SET missing_since = coalesce(missing_since, ?)"
            " WHERE marketplace_id = ? AND list_contains(?, plugin_name)",
            [utcnow(), marketplace_id, sorted(missing)],
        )
    if present:
        con.execute(
            "UPDATE system_plugins SET missing_since = NULL"
            " WHERE marketplace_id = ? AND list_contains(?, plugin_name) AND missing_since IS NOT NULL",
            [marketplace_id, sorted(present)],
        )


def delete_marketplace_marks(con: DuckDBPyConnection, marketplace_id: str) -> int:
    rows = con.execute(
        "DELETE FROM system_plugins WHERE marketplace_id = ? RETURNING plugin_name", [marketplace_id]
    ).fetchall()
    return len(rows)


def subscribe_user(con: DuckDBPyConnection, user_id: str) -> int:
    """Subscribe a (new) user to every system plugin in one statement; returns rows added."""
    rows = con.execute(
        "INSERT INTO user_plugin_subscriptions (user_id, marketplace_id, plugin_name, subscribed_at, origin)"
        " SELECT ?, marketplace_id, plugin_name, ?, ? FROM system_plugins ON CONFLICT DO NOTHING RETURNING user_id",
        [user_id, utcnow(), SYSTEM_FANOUT],
    ).fetchall()
    return len(rows)


def grant_group(con: DuckDBPyConnection, group_id: str) -> int:
    """Grant a (new) group every system plugin in one statement; returns grants added."""
    rows = con.execute(
        f"INSERT INTO resource_grants (id, group_id, resource_type, resource_id, assigned_by, origin)"
        f" SELECT {NEW_ID_SQL}, ?, 'marketplace_plugin', marketplace_id || '/' || plugin_name, 'system:marketplace', ?"
        " FROM system_plugins ON CONFLICT DO NOTHING RETURNING id",
        [group_id, SYSTEM_FANOUT],
    ).fetchall()
    return len(rows)

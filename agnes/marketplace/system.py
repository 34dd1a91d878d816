"""System plugins: curated plugins every user gets, with no opt-out (DESIGN.md, "The served marketplace").

Marking a plugin *fans out*: every group is granted it and every user subscribed to it, each in
one statement, and the rows it adds carry ``origin = 'system_fanout'``. Users and groups created
while it is marked get the same (the ``user_created`` / ``group_created`` receivers below, one
statement each). Revoking a system plugin's grant or unsubscribing from it answers 409.

Unmarking only flips the mark, unless the admin asks to *also revoke what the fan-out added*:
then the ``system_fanout`` grants and subscriptions go, and rows that existed before the mark
(``origin = 'manual'``) stay. :func:`preview` gives the counts a confirmation shows first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duckdb import DuckDBPyConnection

from agnes import audit, markers
from agnes.access import ResourceType
from agnes.errors import NotFound
from agnes.models import grants, groups, marketplaces, subscriptions, system_plugins
from agnes.models.grants import MANUAL, SYSTEM_FANOUT
from agnes.models.marketplaces import Plugin
from agnes.state import state_store


@dataclass(frozen=True)
class SystemPreview:
    """What marking or unmarking one plugin would change (for the confirmation).

    Attributes:
        groups_to_grant, users_to_subscribe: rows a mark would add.
        fanout_grants, fanout_subscriptions: rows the fan-out added (an unmark with
            ``revoke_fanout`` deletes exactly these).
        manual_grants, manual_subscriptions: rows made by hand, which always stay.
    """

    plugin: Plugin
    groups_total: int
    groups_to_grant: int
    users_to_subscribe: int
    fanout_grants: int
    fanout_subscriptions: int
    manual_grants: int
    manual_subscriptions: int

    @property
    def is_system(self) -> bool:
        return self.plugin.is_system

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.plugin.resource_id,
            "is_system": self.is_system,
            "mark": {"groups": self.groups_to_grant, "users": self.users_to_subscribe},
            "unmark": {
                "fanout_grants": self.fanout_grants,
                "fanout_subscriptions": self.fanout_subscriptions,
                "manual_grants": self.manual_grants,
                "manual_subscriptions": self.manual_subscriptions,
            },
        }


def _plugin(con: DuckDBPyConnection, marketplace_id: str, name: str) -> Plugin:
    plugin = marketplaces.get_plugin(con, marketplace_id, name)
    if plugin is None:
        raise NotFound("plugin_not_found", f"No plugin '{marketplace_id}/{name}'.")
    return plugin


def _preview(con: DuckDBPyConnection, plugin: Plugin) -> SystemPreview:
    rtype = ResourceType.MARKETPLACE_PLUGIN.value
    by_grant = grants.count_by_origin(con, rtype, plugin.resource_id)
    by_sub = subscriptions.count_by_origin(con, plugin.marketplace_id, plugin.name)
    total_groups = len(groups.group_names(con))
    return SystemPreview(
        plugin=plugin,
        groups_total=total_groups,
        groups_to_grant=total_groups - sum(by_grant.values()),
        users_to_subscribe=subscriptions.count_unsubscribed_users(con, plugin.marketplace_id, plugin.name),
        fanout_grants=by_grant.get(SYSTEM_FANOUT, 0),
        fanout_subscriptions=by_sub.get(SYSTEM_FANOUT, 0),
        manual_grants=by_grant.get(MANUAL, 0),
        manual_subscriptions=by_sub.get(MANUAL, 0),
    )


def preview(marketplace_id: str, name: str) -> SystemPreview:
    """The counts a mark or unmark confirmation shows. Raises NotFound (``plugin_not_found``)."""
    with state_store().read() as con:
        return _preview(con, _plugin(con, marketplace_id, name))


def set_system(
    marketplace_id: str, name: str, is_system: bool, *, actor_id: str | None, revoke_fanout: bool = False
) -> dict[str, int]:
    """Mark (fan out) or unmark a plugin, in one unit with its audit row.

    Args:
        revoke_fanout: with an unmark, also delete the grants and subscriptions the fan-out
            added (``origin = 'system_fanout'``); rows made by hand stay.

    Returns:
        ``{"groups": n, "users": n}``: grants and subscriptions added (mark) or revoked (unmark
        with ``revoke_fanout``); zeros for a plain unmark.

    Raises:
        NotFound: ``plugin_not_found``.
    """
    rtype = ResourceType.MARKETPLACE_PLUGIN.value
    with state_store().write() as con:
        plugin = _plugin(con, marketplace_id, name)
        was_system = name in system_plugins.marked_names(con, marketplace_id)
        changed_groups = changed_users = 0
        if is_system:
            system_plugins.mark(con, marketplace_id, name, marked_by=actor_id)
            actor = actor_id or "system:marketplace"
            changed_groups = grants.fan_out(con, rtype, plugin.resource_id, assigned_by=actor)
            changed_users = subscriptions.subscribe_all_users(con, marketplace_id, name)
        else:
            system_plugins.unmark(con, marketplace_id, name)
            if revoke_fanout:
                changed_groups = grants.delete_fanout(con, rtype, plugin.resource_id)
                changed_users = subscriptions.delete_fanout(con, marketplace_id, name)
                # Hand-made subscriptions of users who just lost every grant go too, as after any revoke.
                subscriptions.drop_without_access(con, marketplace_id=marketplace_id, plugin_name=name)
        markers.MARKETPLACE.bump()
        audit.record(
            con,
            "marketplace.plugin." + ("mark_system" if is_system else "unmark_system"),
            f"plugin:{plugin.resource_id}",
            params_before={"is_system": was_system},
            is_system=is_system,
            groups=changed_groups,
            users=changed_users,
            revoke_fanout=revoke_fanout if not is_system else None,
        )
    return {"groups": changed_groups, "users": changed_users}


def missing_marks(marketplace_id: str) -> list[system_plugins.SystemMark]:
    """System plugins of a marketplace that its last sync did not find upstream."""
    with state_store().read() as con:
        return [m for m in system_plugins.list_marks(con, marketplace_id) if m.missing_since is not None]


# -- signal receivers (connected in agnes.marketplace.init_app) -------------------------------


def on_user_created(sender: Any, *, con: DuckDBPyConnection, user_id: str, **_: Any) -> None:
    """New users get the system plugins (one statement, whatever their number). No marker moves:
    nothing cached can depend on a user who did not exist."""
    system_plugins.subscribe_user(con, user_id)


def on_group_created(sender: Any, *, con: DuckDBPyConnection, group_id: str, **_: Any) -> None:
    """New groups are granted the system plugins (one statement; the group has no members yet)."""
    system_plugins.grant_group(con, group_id)

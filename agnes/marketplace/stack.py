"""An analyst's stack: curated plugins granted to them, and which ones they subscribed to.

A grant (to any of the user's groups) makes a plugin *available*; a subscription puts it in
the served marketplace. Admins get no shortcut here: they see what their groups are granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from duckdb import DuckDBPyConnection

from agnes import audit, markers
from agnes.access import Principal, ResourceType, is_granted
from agnes.errors import Conflict, NotFound
from agnes.marketplace import resolver
from agnes.models import grants, marketplaces, subscriptions, system_plugins
from agnes.models.marketplaces import Plugin
from agnes.state import state_store


@dataclass(frozen=True)
class StackEntry:
    """One granted plugin as the analyst sees it."""

    plugin: Plugin
    marketplace_name: str
    subscribed: bool

    @property
    def served(self) -> bool:
        return self.plugin.available and (self.subscribed or self.plugin.is_system)

    def to_dict(self) -> dict[str, Any]:
        p = self.plugin
        return {
            "id": p.resource_id,
            "marketplace": p.marketplace_id,
            "marketplace_name": self.marketplace_name,
            "name": p.name,
            "manifest_name": p.manifest_name,
            "description": p.description,
            "version": p.version,
            "category": p.category,
            "skills": p.skill_count,
            "agents": p.agent_count,
            "commands": p.command_count,
            "available": p.available,
            "unavailable_reason": p.unavailable_reason,
            "is_system": p.is_system,
            "subscribed": self.subscribed or p.is_system,
            "served": self.served,
        }


def granted_plugins(con: DuckDBPyConnection, group_ids: list[str]) -> list[Plugin]:
    """Plugins granted to any of the groups (or marked system), in marketplace order."""
    granted = grants.granted_resource_ids(con, group_ids, ResourceType.MARKETPLACE_PLUGIN)
    return [p for p in marketplaces.list_plugins(con) if p.resource_id in granted or p.is_system]


def my_stack(principal: Principal) -> list[StackEntry]:
    with state_store().read() as con:
        plugins = granted_plugins(con, list(principal.group_ids))
        subscribed = {
            (s.marketplace_id, s.plugin_name) for s in subscriptions.list_subscriptions(con, principal.user.id)
        }
        names = {m.id: m.name for m in marketplaces.list_marketplaces(con)}
    return [
        StackEntry(p, names.get(p.marketplace_id, p.marketplace_id), (p.marketplace_id, p.name) in subscribed)
        for p in plugins
    ]


def install(principal: Principal, slug: str, name: str) -> StackEntry:
    """Subscribe the caller to a plugin granted to one of their groups (idempotent; admins too
    add only what their groups are granted). Raises NotFound (``plugin_not_available``)."""
    resource_id = f"{slug}/{name}"
    if not is_granted(principal, ResourceType.MARKETPLACE_PLUGIN, resource_id):
        raise NotFound("plugin_not_available", f"No plugin '{resource_id}' is available to you.")
    with state_store().write() as con:
        plugin = marketplaces.get_plugin(con, slug, name)
        if plugin is None:  # deleted since the check
            raise NotFound("plugin_not_available", f"No plugin '{resource_id}' is available to you.")
        if subscriptions.subscribe(con, principal.user.id, slug, name):
            markers.MARKETPLACE.bump()
        audit.record(con, "marketplace.subscribe", f"plugin:{resource_id}")
        mp = marketplaces.get_marketplace(con, slug)
    return StackEntry(plugin, mp.name if mp else slug, True)


def uninstall(principal: Principal, slug: str, name: str) -> bool:
    """Unsubscribe the caller; returns False when they were not subscribed.

    Raises Conflict (``cannot_uninstall_system_plugin``) for a system plugin.
    """
    with state_store().write() as con:
        plugin = marketplaces.get_plugin(con, slug, name)
        if plugin is not None and plugin.is_system:
            raise Conflict(
                "cannot_uninstall_system_plugin", f"'{slug}/{name}' is a system plugin; every user keeps it."
            )
        removed = subscriptions.unsubscribe(con, principal.user.id, slug, name)
        if removed:
            markers.MARKETPLACE.bump()
        audit.record(con, "marketplace.unsubscribe", f"plugin:{slug}/{name}", removed=removed)
    return removed


# -- signal receivers (connected in agnes.marketplace.init_app) -------------------------------


def on_grant_revoked(
    sender: Any,
    *,
    con: DuckDBPyConnection,
    group_id: str,
    resource_type: str,
    resource_id: str | None = None,
    resource_ids: list[str] | None = None,
    cascade: bool = False,
    **_: Any,
) -> None:
    """Drop subscriptions only for users who lost *all* access to the plugins (not everyone's).

    A system plugin's grant cannot be revoked directly (409 ``cannot_revoke_system_grant``;
    unmark the plugin first), only with its group.
    """
    if str(resource_type) != ResourceType.MARKETPLACE_PLUGIN.value:
        return
    ids = list(resource_ids or []) + ([resource_id] if resource_id else [])
    if not cascade:
        marked = {m.resource_id for m in system_plugins.list_marks(con)}
        locked = sorted(marked.intersection(ids))
        if locked:
            raise Conflict(
                "cannot_revoke_system_grant",
                f"'{locked[0]}' is a system plugin granted to every group; unmark it first.",
            )
    subscriptions.drop_without_access(con, resource_ids=ids)
    markers.MARKETPLACE.bump()


def on_grant_created(sender: Any, *, con: DuckDBPyConnection, resource_type: str, **_: Any) -> None:
    if str(resource_type) == ResourceType.MARKETPLACE_PLUGIN.value:
        markers.MARKETPLACE.bump()


def on_membership_changed(sender: Any, *, con: DuckDBPyConnection, user_id: str, **_: Any) -> None:
    """A user left or joined a group: their served set may change; drop what they lost."""
    subscriptions.drop_without_access(con, user_id=user_id)
    markers.MARKETPLACE.bump()


def on_credentials_changed(sender: Any, *, con: DuckDBPyConnection, user_id: str, **_: Any) -> None:
    """A token was revoked or a user deactivated: end every cached trust (the marker moves)."""
    markers.MARKETPLACE.bump()


# -- what to run in Claude Code after a change ---------------------------------------------------

# Refreshes Claude Code's copy of the served marketplace (it caches it between updates).
REFRESH_COMMAND = f"claude plugin marketplace update {resolver.MARKETPLACE_NAME}"


def served_name(principal: Principal, slug: str, name: str) -> str | None:
    """The name Claude Code knows this plugin by in the caller's served marketplace
    (``<served name>@agnes``), None when it is not served to them."""
    served = resolver.resolve(principal.user.id, principal.group_ids)
    for plugin in served.plugins:
        if plugin.marketplace_id == slug and plugin.name == name:
            return plugin.served_name
    return None


def claude_commands(change: str | None, install_name: str | None) -> list[str]:
    """What to run in Claude Code after a stack change, in order.

    ``added``: update the marketplace, then ``claude plugin install <name>@agnes``. ``removed``:
    ``claude plugin uninstall <name>@agnes`` (without it Claude Code keeps the installed copy and
    lists it as "failed to load: Plugin not found"), then update. Otherwise just the update.
    """
    at = f"{install_name}@{resolver.MARKETPLACE_NAME}"
    if change == "added" and install_name:
        return [REFRESH_COMMAND, f"claude plugin install {at}"]
    if change == "removed" and install_name:
        return [f"claude plugin uninstall {at}", REFRESH_COMMAND]
    return [REFRESH_COMMAND]

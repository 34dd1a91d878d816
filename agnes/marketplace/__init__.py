"""Curated marketplaces re-served to Claude Code.

* :mod:`~agnes.marketplace.curated` — registering marketplaces (tokens in the overlay file);
* :mod:`~agnes.marketplace.system` — system plugins (the fan-out, its provenance, unmarking);
* :mod:`~agnes.marketplace.sync` — fetching and reading them (with :mod:`.gitfetch`, :mod:`.manifest`);
* :mod:`~agnes.marketplace.stack` — grants make plugins available, subscriptions pick them;
* :mod:`~agnes.marketplace.cards` — plugin cards and each viewer's access, cached per process
  (the plugin resource type's access check);
* :mod:`~agnes.marketplace.resolver` — each user's served set and its ETag;
* :mod:`~agnes.marketplace.packager` — the merged layout as a git repository and a ZIP;
* :mod:`~agnes.marketplace.serving` — who is calling ``/marketplace.*`` and what they are served,
  and the download audit; :mod:`~agnes.marketplace.gitserve` — ``/marketplace.git`` (smart HTTP).
"""

from __future__ import annotations

from duckdb import DuckDBPyConnection
from flask import Flask

from agnes import signals
from agnes.access import ItemFacts, Principal, ResourceItem, ResourceType, register_resource_type
from agnes.marketplace import cards, resolver, stack, system
from agnes.models import grants, marketplaces, plugin_cards, system_plugins


def list_plugin_items(con: DuckDBPyConnection) -> list[ResourceItem]:
    """Grantable curated plugins for the access tree (``<slug>/<plugin>``, grouped by marketplace;
    system plugins locked)."""
    return [
        ResourceItem(rid, label, marketplace, locked=system)
        for rid, label, marketplace, system in plugin_cards.list_plugin_labels(con)
    ]


def get_plugin_item(con: DuckDBPyConnection, resource_id: str) -> ResourceItem | None:
    slug, _, name = resource_id.partition("/")
    plugin = marketplaces.get_plugin(con, slug, name)
    if plugin is None:
        return None
    mp = marketplaces.get_marketplace(con, slug)
    return ResourceItem(plugin.resource_id, plugin.manifest_name, mp.name if mp else slug, locked=plugin.is_system)


def plugin_granted_groups(con: DuckDBPyConnection, resource_type: str, resource_id: str) -> set[str]:
    """Groups whose members may install a plugin: its grants, and Everyone for a system plugin."""
    found = grants.granted_group_ids(con, resource_type, resource_id)
    if resource_id in {m.resource_id for m in system_plugins.list_marks(con)}:
        found.add("everyone")
    return found


def plugin_facts(principal: Principal, resource_id: str) -> ItemFacts:
    """Whether the plugin exists, is system, available, in the user's stack and served to them."""
    card_set, viewer = cards.cards_and_viewer(principal)
    card = card_set.by_id.get(resource_id)
    if card is None:
        return ItemFacts(exists=False, label=resource_id)
    notes = []
    if card.is_system:
        notes.append(f"{card.name} is a system plugin: every user has it, with no opt-out.")
    elif resource_id in viewer.subscribed:
        notes.append(f"{card.name} is in their stack (subscribed).")
    else:
        notes.append(f"{card.name} is not in their stack: it is served only after they subscribe.")
    if not card.available:
        reason = card_set.files[resource_id].unavailable_reason if resource_id in card_set.files else ""
        notes.append(
            f"{card.name} is unavailable ({reason or 'its source could not be fetched'}): nobody is served it."
        )
    served = principal.user.active and any(
        f"{p.marketplace_id}/{p.name}" == resource_id
        for p in resolver.resolve(principal.user.id, principal.group_ids).plugins
    )
    notes.append(f"Claude Code is served {card.name}." if served else f"Claude Code is not served {card.name}.")
    return ItemFacts(exists=True, label=card.name, served=served, notes=tuple(notes))


def init_app(app: Flask) -> None:
    """Register the plugin resource type (items, access check) and the signal receivers."""
    register_resource_type(
        ResourceType.MARKETPLACE_PLUGIN,
        list_items=list_plugin_items,
        is_granted=cards.is_granted,
        exists=cards.exists,
        granted_groups=plugin_granted_groups,
        facts=plugin_facts,
        get_item=get_plugin_item,
    )
    # weak=False: the receivers are module functions; keep them connected for the process.
    signals.grant_revoked.connect(stack.on_grant_revoked, weak=False)
    signals.grant_created.connect(stack.on_grant_created, weak=False)
    signals.membership_changed.connect(stack.on_membership_changed, weak=False)
    signals.user_created.connect(system.on_user_created, weak=False)
    signals.credentials_changed.connect(stack.on_credentials_changed, weak=False)
    signals.group_created.connect(system.on_group_created, weak=False)

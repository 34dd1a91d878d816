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
from agnes.access import ResourceItem, ResourceType, register_resource_type
from agnes.marketplace import cards, stack, system
from agnes.models import marketplaces


def list_plugin_items(con: DuckDBPyConnection) -> list[ResourceItem]:
    """Grantable curated plugins for the access tree (``<slug>/<plugin>``, grouped by marketplace)."""
    names = {m.id: m.name for m in marketplaces.list_marketplaces(con)}
    return [
        ResourceItem(
            p.resource_id,
            p.manifest_name if p.manifest_name != p.name else p.name,
            names.get(p.marketplace_id, p.marketplace_id),
        )
        for p in marketplaces.list_plugins(con)
    ]


def init_app(app: Flask) -> None:
    """Register the plugin resource type (items, access check) and the signal receivers."""
    register_resource_type(
        ResourceType.MARKETPLACE_PLUGIN, list_items=list_plugin_items, is_granted=cards.is_granted, exists=cards.exists
    )
    # weak=False: the receivers are module functions; keep them connected for the process.
    signals.grant_revoked.connect(stack.on_grant_revoked, weak=False)
    signals.grant_created.connect(stack.on_grant_created, weak=False)
    signals.membership_changed.connect(stack.on_membership_changed, weak=False)
    signals.user_created.connect(system.on_user_created, weak=False)
    signals.credentials_changed.connect(stack.on_credentials_changed, weak=False)
    signals.group_created.connect(system.on_group_created, weak=False)

"""Curated marketplaces re-served to Claude Code.

* :mod:`~agnes.marketplace.registry` — registering marketplaces (tokens in the overlay file);
* :mod:`~agnes.marketplace.sync` — fetching and reading them (with :mod:`.gitfetch`, :mod:`.manifest`);
* :mod:`~agnes.marketplace.stack` — grants make plugins available, subscriptions pick them;
* :mod:`~agnes.marketplace.resolver` — each user's served set and its ETag;
* :mod:`~agnes.marketplace.packager` — the merged layout as a git repository and a ZIP;
* :mod:`~agnes.marketplace.gitserve` — ``/marketplace.git`` (smart HTTP, read-only).
"""

from __future__ import annotations

from duckdb import DuckDBPyConnection
from flask import Flask

from agnes.access import ResourceItem, ResourceType, register_resource_items


def list_plugin_items(con: DuckDBPyConnection) -> list[ResourceItem]:
    """Grantable curated plugins for the access tree (``<slug>/<plugin>``, grouped by marketplace)."""
    from agnes.models import marketplaces

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
    """Register the plugin item lister, the signal receivers and the git endpoint."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from agnes import signals
    from agnes.marketplace import stack
    from agnes.marketplace.gitserve import MarketplaceDispatcher

    register_resource_items(ResourceType.MARKETPLACE_PLUGIN, list_plugin_items)
    # weak=False: the receivers are module functions; keep them connected for the process.
    signals.grant_revoked.connect(stack.on_grant_revoked, weak=False)
    signals.grant_created.connect(stack.on_grant_created, weak=False)
    signals.membership_changed.connect(stack.on_membership_changed, weak=False)
    signals.user_created.connect(stack.on_user_created, weak=False)
    signals.credentials_changed.connect(stack.on_credentials_changed, weak=False)
    signals.group_created.connect(stack.on_group_created, weak=False)
    # The git endpoint sits inside ProxyFix (when configured) so it sees the client's address.
    if isinstance(app.wsgi_app, ProxyFix):
        app.wsgi_app.app = MarketplaceDispatcher(app, app.wsgi_app.app)
    else:
        app.wsgi_app = MarketplaceDispatcher(app, app.wsgi_app)  # type: ignore[method-assign]

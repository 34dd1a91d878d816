"""JSON twins of the marketplace pages, for ``agnes marketplace search|show`` and scripts.

Built from the same data functions as the HTML pages (:mod:`agnes.marketplace_ui`), so the
CLI and the browser cannot disagree. Adding and removing plugins is ``POST/DELETE
/api/marketplace/curated/<slug>/<plugin>/install`` (:mod:`agnes.views.api.marketplaces`).
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from agnes.access import ResourceType, login_required, resource_access_required
from agnes.pages.marketplace_listing import listing_page, parse_listing_query
from agnes.pages.marketplace_plugin import item_page, plugin_page, plugin_resource_id

bp = Blueprint("marketplace_browse", __name__)


@bp.get("/marketplace/items")
@login_required
def list_items():  # type: ignore[no-untyped-def]
    """``?tab=curated|my&q&category&type=any|skill|agent|command&sort=recent|name&page&page_size`` (1..100)."""
    return jsonify(listing_page(g.principal, parse_listing_query(request.args)).to_dict())


@bp.get("/marketplace/curated/<slug>/<plugin>")
@resource_access_required(ResourceType.MARKETPLACE_PLUGIN, plugin_resource_id)
def get_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    """A plugin with its skills, agents, commands, hooks and MCP servers (403 without a grant, 404 if missing)."""
    return jsonify(plugin_page(g.principal, slug, plugin).to_dict())


@bp.get("/marketplace/curated/<slug>/<plugin>/<any(skill, agent, command):kind>/<path:item>")
@resource_access_required(ResourceType.MARKETPLACE_PLUGIN, plugin_resource_id)
def get_item(slug: str, plugin: str, kind: str, item: str):  # type: ignore[no-untyped-def]
    """One skill, agent or command: frontmatter, rendered body, files."""
    return jsonify(item_page(g.principal, slug, plugin, kind, item).to_dict())

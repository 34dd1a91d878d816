"""Analysts' marketplace pages: ``/marketplace`` listing, plugin detail, skill/agent/command pages.

Server-rendered with HTMX swaps (search as you type, tabs, pills and paging swap
``#marketplace-results``; add/remove swaps ``#plugin-install``); every page also works as
plain links and forms. Data comes from :mod:`agnes.pages.marketplace_listing` and
:mod:`agnes.pages.marketplace_plugin`, whose functions the JSON twins in
:mod:`agnes.views.api.marketplace_browse` call too.
"""

from __future__ import annotations

from flask import Blueprint, g, request, url_for

from agnes.access import ResourceType, login_required, resource_access_required
from agnes.errors import AppError
from agnes.htmx import fragment_or_redirect, render
from agnes.marketplace import stack
from agnes.marketplace.stack import REFRESH_COMMAND, claude_commands, served_name
from agnes.pages.flea import TabFilters, flea_tab, my_installs
from agnes.pages.flea_detail import KIND_LABELS, hue, initials, tab_url
from agnes.pages.flea_detail import SORT_LABELS as FLEA_SORT_LABELS
from agnes.pages.marketplace_listing import (
    SORT_LABELS,
    TAB_LABELS,
    TYPE_LABELS,
    Tab,
    listing_page,
    parse_listing_query,
)
from agnes.pages.marketplace_plugin import (
    item_page,
    plugin_page,
    plugin_resource_id,
    plugin_state,
)

bp = Blueprint("marketplace_browse", __name__)


@bp.context_processor
def _labels() -> dict[str, object]:
    return {
        "tab_labels": {t.value: label for t, label in TAB_LABELS.items()},
        "sort_labels": {s.value: label for s, label in SORT_LABELS.items()},
        "type_labels": {t.value: label for t, label in TYPE_LABELS.items()},
        "refresh_command": REFRESH_COMMAND,
        "kind_labels": KIND_LABELS,
        "flea_sort_labels": FLEA_SORT_LABELS,
        "flea_initials": initials,
        "flea_hue": hue,
        "flea_url": lambda filters, **changes: tab_url(url_for("marketplace_browse.listing"), filters, **changes),
    }


@bp.get("/marketplace")
@login_required
def listing():  # type: ignore[no-untyped-def]
    """Curated plugins, the viewer's stack (flea installs too) or the flea market (``tab=flea``),
    searchable; the fragment is ``#marketplace-results``."""
    if request.args.get("tab") == "flea":
        flea = flea_tab(g.principal, TabFilters.from_args(request.args))
        response = render("marketplace/flea_listing.html", "marketplace/_flea_results.html", flea=flea)
        response.headers["HX-Push-Url"] = tab_url(url_for("marketplace_browse.listing"), flea.filters)
        return response
    page = listing_page(g.principal, parse_listing_query(request.args))
    flea_installs = my_installs(g.principal) if page.query.tab is Tab.MY else []
    response = render(
        "marketplace/listing.html", "marketplace/_results.html", listing=page, flea_installs=flea_installs
    )
    # The address bar shows the canonical URL (defaults left out), not every field of the form.
    response.headers["HX-Push-Url"] = url_for("marketplace_browse.listing", **page.query.args())
    return response


@bp.get("/marketplace/curated/<slug>/<plugin>")
@resource_access_required(ResourceType.MARKETPLACE_PLUGIN, plugin_resource_id)
def plugin_detail(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    """A plugin's hero, install panel, README and contents (403 without a grant, 404 if missing)."""
    page = plugin_page(g.principal, slug, plugin)
    changed = request.args.get("changed") if request.args.get("changed") in ("added", "removed") else None
    name = (served_name(g.principal, slug, plugin) if changed else None) or page.state.card.manifest_name
    return render("marketplace/plugin.html", detail=page, changed=changed, commands=claude_commands(changed, name))


def _change_stack(slug: str, plugin: str, *, add: bool):  # type: ignore[no-untyped-def]
    changed = "added" if add else "removed"
    before = None if add else served_name(g.principal, slug, plugin)  # the name it had in Claude Code
    try:
        if add:
            stack.install(g.principal, slug, plugin)
        else:
            stack.uninstall(g.principal, slug, plugin)
    except AppError as exc:
        if exc.status != 409:
            raise
        state = plugin_state(g.principal, slug, plugin)
        return render(
            "marketplace/_install.html", status=409, state=state, changed=None, error=exc.message, commands=[]
        )
    state = plugin_state(g.principal, slug, plugin)
    name = (served_name(g.principal, slug, plugin) if add else before) or state.card.manifest_name
    return fragment_or_redirect(
        "marketplace/_install.html",
        url_for("marketplace_browse.plugin_detail", slug=slug, plugin=plugin, changed=changed),
        state=state,
        changed=changed,
        error=None,
        commands=claude_commands(changed, name),
    )


@bp.post("/marketplace/curated/<slug>/<plugin>/install")
@login_required
def install_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    """Add the plugin to the viewer's stack; answers the install panel (htmx) or 303 to the page."""
    return _change_stack(slug, plugin, add=True)


@bp.post("/marketplace/curated/<slug>/<plugin>/remove")
@login_required
def remove_plugin(slug: str, plugin: str):  # type: ignore[no-untyped-def]
    """Remove the plugin from the viewer's stack (409 for a plugin required by the organization)."""
    return _change_stack(slug, plugin, add=False)


@bp.get("/marketplace/curated/<slug>/<plugin>/<any(skill, agent, command):kind>/<path:item>")
@resource_access_required(ResourceType.MARKETPLACE_PLUGIN, plugin_resource_id)
def item_detail(slug: str, plugin: str, kind: str, item: str):  # type: ignore[no-untyped-def]
    """A skill, agent or command: frontmatter, rendered body, shipped files, link to the plugin."""
    page = item_page(g.principal, slug, plugin, kind, item)
    return render("marketplace/item.html", detail=page)

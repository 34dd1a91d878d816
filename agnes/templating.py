"""Jinja filters, globals and context helpers: every template helper the app registers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app, g, render_template, request, url_for
from markupsafe import Markup

from agnes.lru import LRU
from agnes.models import utcnow
from agnes.pages.marketplace_listing import CardView
from agnes.plugin.frontmatter import display_value
from agnes.units import filesize
from agnes.urls import base_url

# Rendered listing cards kept per process: (card, in stack, script root) → HTML.
CARD_CACHE_SIZE = 4096
# Rendered /admin/access rows kept per process (a few groups of 1,000+ items).
ACCESS_ROW_CACHE_SIZE = 16384


def timeago(value: datetime | None) -> str:
    """``3 min ago``-style text for a naive UTC datetime; ``never`` for None."""
    if value is None:
        return "never"
    seconds = (utcnow() - value.replace(tzinfo=None)).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = "seconds" if seconds >= 5 else "now"
        if text == "now":
            return "just now"
    return f"in {text}" if future else f"{text} ago"


def isodate(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def number(value: int | float | None) -> str:
    """``336,776``: thousands separated; ``""`` for None."""
    return "" if value is None else f"{value:,}"


def icon_sprite() -> Markup:
    """The SVG symbols of ``_macros/icons.html`` (``sprite()``), rendered once per process."""
    sprite = current_app.extensions.get("agnes_icon_sprite")
    if sprite is None:
        module = current_app.jinja_env.get_template("_macros/icons.html").module
        sprite = current_app.extensions.setdefault("agnes_icon_sprite", Markup(module.sprite()))  # type: ignore[attr-defined]
    return sprite


def plugin_card_html(view: CardView) -> Markup:
    """One listing card's ``<li>``, rendered once per card content and state, then reused.

    A Card holds everything its markup shows, so equal cards render equal HTML; when a sync
    changes a card, the new value is a new key and the old entry ages out.
    """
    cache = current_app.extensions.get("agnes_marketplace_cards")
    if cache is None:
        cache = current_app.extensions.setdefault("agnes_marketplace_cards", LRU(CARD_CACHE_SIZE))
    key = (view.card, view.in_stack, view.usage, request.script_root)
    html = cache.get(key)
    if html is None:
        html = Markup(render_template("marketplace/_card.html", view=view))
        cache.put(key, html)
    return html


def access_urls() -> dict[str, str]:
    """URL prefixes the /admin/access rows join with ids (1,000+ rows: one ``url_for`` each, not per row)."""
    revoke = url_for("admin_access.revoke_post", grant_id="0")
    resource = url_for("admin_access.show_resource", resource_type="t", resource_id="i")
    return {
        "grant": url_for("admin_access.grant_post"),
        "revoke": revoke[: -len("0/delete")],
        "resource": resource[: -len("t/i")],
    }


def access_row_html(row: Any, urls: dict[str, str], hidden: Markup) -> Markup:
    """One /admin/access row (``admin/access/_row.html``), rendered once per content and reused:
    a row shows only what its key holds (the item, the grant, a refusal, the form's hidden fields
    and the URL prefixes), so equal keys render equal HTML; a toggle changes the key of one row."""
    cache = current_app.extensions.get("agnes_access_rows")
    if cache is None:
        cache = current_app.extensions.setdefault("agnes_access_rows", LRU(ACCESS_ROW_CACHE_SIZE))
    grant = row.grant
    key = (
        row.anchor,
        row.item.label,
        row.locked,
        grant.id if grant else None,
        grant.origin if grant else None,
        row.message,
        str(hidden),
        urls["grant"],
        urls["revoke"],
        urls["resource"],
    )
    html = cache.get(key)
    if html is None:
        macro = current_app.jinja_env.get_template("admin/access/_row.html").module.access_row  # type: ignore[attr-defined]
        html = Markup(macro(row, urls, hidden))
        cache.put(key, html)
    return html


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        timeago=timeago, isodate=isodate, filesize=filesize, number=number, display_value=display_value
    )
    app.jinja_env.globals.update(
        icon_sprite=icon_sprite,
        plugin_card_html=plugin_card_html,
        access_urls=access_urls,
        access_row_html=access_row_html,
    )
    app.jinja_env.globals["base_url"] = base_url
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def inject_principal() -> dict[str, object]:
        return {"principal": g.get("principal")}

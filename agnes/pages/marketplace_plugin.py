"""Plugin and item pages: one data function each, shared by the HTML pages and the JSON twin.

Access is decided before these run, by the views' ``resource_access_required`` guard
(:mod:`agnes.access`): a viewer sees a plugin granted to one of their groups, or a system plugin;
administrators may look at any plugin (they can only *add* what their groups are granted, like
everyone else). Missing plugin → 404 ``plugin_not_found``; existing but not granted → 403
``access_denied``. Plugin rows come from the process cache of :mod:`agnes.marketplace.cards`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from agnes.access import Principal, ResourceType, is_granted
from agnes.claude_code.skills import SkillUsage, skill_usage
from agnes.errors import NotFound
from agnes.marketplace.cards import Card, PluginFiles, cards_and_viewer
from agnes.marketplace.stack import REFRESH_COMMAND
from agnes.plugin.contents import KINDS, Item, ItemDocument, PluginContents, item_document, plugin_contents
from agnes.telemetry.popularity import ZERO, Usage, usage_index


def plugin_resource_id(slug: str, plugin: str, **_: object) -> str:
    """The resource id of a plugin page's URL arguments (for ``resource_access_required``)."""
    return f"{slug}/{plugin}"


@dataclass(frozen=True)
class PluginState:
    """A plugin as one viewer sees it, without its files (enough for the install panel).

    Attributes:
        granted: a grant to one of the viewer's groups exists (or the plugin is a system plugin).
        in_stack: the viewer subscribed (system plugins are always in everyone's stack).
        files: the fields only the plugin's own pages need (homepage, content location, ...).
    """

    card: Card
    granted: bool
    in_stack: bool
    files: PluginFiles

    @property
    def can_add(self) -> bool:
        return self.granted and self.card.available and not self.in_stack

    @property
    def can_remove(self) -> bool:
        return self.in_stack and not self.card.is_system

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.card.to_dict(),
            "homepage": self.files.homepage or None,
            "curator_email": self.files.curator_email or None,
            "unavailable_reason": self.files.unavailable_reason or None,
            "granted": self.granted,
            "in_stack": self.in_stack,
        }


def plugin_state(principal: Principal, slug: str, name: str) -> PluginState:
    """One plugin as the viewer sees it (from the card cache). Raises NotFound (``plugin_not_found``)."""
    card_set, viewer = cards_and_viewer(principal)
    resource_id = f"{slug}/{name}"
    card = card_set.by_id.get(resource_id)
    if card is None:
        raise NotFound("plugin_not_found", f"There is no plugin '{resource_id}'.")
    return PluginState(
        card=card,
        granted=is_granted(principal, ResourceType.MARKETPLACE_PLUGIN, resource_id),
        in_stack=viewer.has_in_stack(card),
        files=card_set.files[resource_id],
    )


def _plugin_dir(state: PluginState) -> Path | None:
    if not state.files.content_dir:
        return None
    path = Path(state.files.content_dir)
    return path if path.is_absolute() else Path(current_app.config["AGNES_DATA_DIR"]) / path


def _contents(state: PluginState) -> PluginContents:
    plugin_dir = _plugin_dir(state)
    if plugin_dir is None:
        reason = state.files.unavailable_reason or "its files have not been synced yet"
        return PluginContents(warnings=(f"This plugin cannot be served: {reason}.",))
    return plugin_contents(plugin_dir, state.files.content_hash, state.files.raw)


def _item_json(slug: str, name: str, item: Item) -> dict[str, Any]:
    return {"kind": item.kind, "id": item.id, "name": item.name, "description": item.description, "path": item.relpath}


@dataclass(frozen=True)
class PluginPage:
    state: PluginState
    contents: PluginContents
    usage: Usage = ZERO

    def to_dict(self) -> dict[str, Any]:
        c = self.contents
        slug, name = self.state.card.marketplace_id, self.state.card.name
        return {
            **self.state.to_dict(),
            "skills": [_item_json(slug, name, i) for i in c.skills],
            "agents": [_item_json(slug, name, i) for i in c.agents],
            "commands": [_item_json(slug, name, i) for i in c.commands],
            "hooks": [h.to_dict() for h in c.hooks],
            "mcp_servers": [{"name": m.name, "type": m.type, "target": m.target} for m in c.mcp_servers],
            "readme_html": str(c.readme_html) or None,
            "warnings": list(c.warnings),
            "refresh_command": REFRESH_COMMAND,
            "usage": self.usage.to_dict(),
        }


def plugin_page(principal: Principal, slug: str, name: str) -> PluginPage:
    """The plugin detail page's data. Raises NotFound (``plugin_not_found``)."""
    state = plugin_state(principal, slug, name)
    return PluginPage(state=state, contents=_contents(state), usage=usage_index().plugin(state.card.id))


@dataclass(frozen=True)
class ItemPage:
    state: PluginState
    document: ItemDocument
    usage: Usage = ZERO
    invocations: SkillUsage | None = None  # skills: by Claude vs typed (OpenTelemetry)

    def to_dict(self) -> dict[str, Any]:
        d = self.document
        return {
            **_item_json(self.state.card.marketplace_id, self.state.card.name, d.item),
            "plugin": self.state.to_dict(),
            "frontmatter": {
                k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
                for k, v in d.frontmatter.fields.items()
            },
            "frontmatter_error": d.frontmatter.error,
            "body_html": str(d.body_html),
            "files": [{"path": f.relpath, "size": f.size} for f in d.files],
            "truncated": d.truncated,
            "usage": self.usage.to_dict(),
            "invocations": self.invocations.to_dict() if self.invocations is not None else None,
        }


def item_page(principal: Principal, slug: str, name: str, kind: str, item_id: str) -> ItemPage:
    """A skill, agent or command page's data.

    Raises:
        NotFound: ``plugin_not_found``, or ``<kind>_not_found`` when the plugin has no such item.
    """
    if kind not in KINDS:
        raise NotFound("not_found", "There is nothing at this address.")
    state = plugin_state(principal, slug, name)
    plugin_dir = _plugin_dir(state)
    item = _contents(state).find(kind, item_id) if plugin_dir is not None else None
    document = item_document(plugin_dir, state.files.content_hash, item) if item is not None and plugin_dir else None
    if document is None:
        raise NotFound(f"{kind}_not_found", f"The plugin '{slug}/{name}' has no {kind} '{item_id}'.")
    invocations = skill_usage(slug, name, item_id) if kind == "skill" else None
    return ItemPage(state=state, document=document, usage=item_usage(state.card.id, item), invocations=invocations)


def item_usage(parent: str, item: Item) -> Usage:
    """An item's figures: Claude Code names it by its folder or file name, older plugins by the
    frontmatter name, so both are looked up."""
    index = usage_index()
    for name in dict.fromkeys((item.id, item.name)):
        found = index.item(parent, item.kind, name)
        if found is not ZERO:
            return found
    return ZERO

"""Page data of the flea market's HTML surfaces, built on :mod:`agnes.pages.flea` (which the JSON
twins share): what an entry's page shows beyond :func:`~agnes.pages.flea.entity_page` (its skills,
agents, commands, hooks and MCP servers, read like a curated plugin's), the review-status fragment
the owner watches, and the upload form's choices.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from agnes.access import Principal
from agnes.errors import NotFound
from agnes.flea import store
from agnes.flea.checks import KINDS
from agnes.flea.service import CATEGORIES
from agnes.flea.visibility import sees_all_versions, visible_entity
from agnes.marketplace.cards import HUES
from agnes.models import flea as model
from agnes.pages.flea import EntityPage, TabFilters, entity_page
from agnes.plugin.contents import KINDS as ITEM_KINDS
from agnes.plugin.contents import ItemDocument, PluginContents, item_document, plugin_contents
from agnes.state import state_store
from agnes.telemetry.popularity import ZERO, Usage

# Words for version statuses (the owner's and admins' badges).
STATUS_LABELS = {
    "in_review": "Under review",
    "approved": "Approved",
    "blocked": "Blocked",
    "review_error": "Review failed",
}
# Badge colour per status (see _macros/status.html: ok green, failed red, warn amber).
STATUS_KINDS = {"in_review": "warn", "approved": "ok", "blocked": "failed", "review_error": "failed"}
KIND_LABELS = {"skill": "Skill", "agent": "Agent", "command": "Command", "plugin": "Plugin"}


def initials(name: str) -> str:
    """Two letters for an entry's avatar (``sql-helper`` -> ``SH``)."""
    parts = [p for p in name.replace("_", "-").split("-") if p]
    return ("".join(p[0] for p in parts[:2]) or name[:2]).upper()


def hue(entity_id: str) -> int:
    """A stable avatar colour (0..HUES-1) per entry."""
    return zlib.crc32(entity_id.encode()) % HUES


@dataclass(frozen=True)
class ReviewStatus:
    """The newest version of an entry as its owner (or an admin) watches it.

    Attributes:
        entity_id: the entry.
        number: the newest version's number (None: nothing uploaded, or hidden from the viewer).
        status: ``in_review`` | ``approved`` | ``blocked`` | ``review_error`` (None as above).
        reason: an administrator's rejection reason, or the reviewer's note on a failure.
        served_version: the number installers get (None while nothing is approved).
    """

    entity_id: str
    number: int | None
    status: str | None
    reason: str | None
    served_version: int | None

    @property
    def label(self) -> str:
        return STATUS_LABELS.get(self.status or "", "")

    @property
    def polling(self) -> bool:
        return self.status == "in_review"

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "version": self.number,
            "status": self.status,
            "label": self.label,
            "reason": self.reason,
            "served_version": self.served_version,
        }


def review_status(viewer: Principal, entity_id: str) -> ReviewStatus:
    """The review state of an entry's newest version; only its owner and admins see a status.

    Raises:
        NotFound: the entry is hidden from the viewer, or missing.
    """
    entity = visible_entity(viewer, entity_id)
    if not sees_all_versions(viewer, entity):
        return ReviewStatus(entity.id, None, None, None, entity.served_version)
    with state_store().read() as con:
        versions = model.list_versions(con, entity.id)
    return _status(entity.id, entity.served_version, [v.to_dict() for v in versions[:1]])


def _status(entity_id: str, served: int | None, versions: list[dict[str, Any]]) -> ReviewStatus:
    """The status of the newest of ``versions`` (version dicts, newest first)."""
    if not versions:
        return ReviewStatus(entity_id, None, None, None, served)
    newest = versions[0]
    status = newest.get("status")
    reason = newest.get("reason") or (newest.get("note") if status in ("blocked", "review_error") else None)
    return ReviewStatus(entity_id, newest["number"], status, reason or None, served)


@dataclass(frozen=True)
class EntityDetail:
    """An entry's page: :class:`~agnes.pages.flea.EntityPage`, what its shown version contains,
    and the owner's review status."""

    page: EntityPage
    contents: PluginContents
    shown_version: int | None
    status: ReviewStatus
    initials: str
    hue: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.page.to_dict(), "review": self.status.to_dict(), "shown_version": self.shown_version}


def entity_detail(viewer: Principal, entity_id: str) -> EntityDetail:
    """Everything ``/marketplace/flea/<id>`` shows.

    The contents are those of the served version; the owner and admins see the newest upload's
    while nothing is served yet.

    Raises:
        NotFound: the entry is hidden from the viewer, or missing.
    """
    page = entity_page(viewer, entity_id)
    entity = page.entity
    numbers = [v["number"] for v in page.versions]
    shown = entity.served_version or (max(numbers) if numbers and page.can_manage else None)
    sha = next((v.get("sha256") for v in page.versions if v["number"] == shown), None)
    contents = plugin_contents(store.version_dir(entity.id, shown), sha) if shown is not None else PluginContents()
    return EntityDetail(
        page=page,
        contents=contents,
        shown_version=shown,
        status=_status(entity.id, entity.served_version, page.versions if page.can_manage else []),
        initials=initials(entity.name),
        hue=hue(entity.id),
    )


@dataclass(frozen=True)
class ItemParent:
    """What ``marketplace/item.html`` shows of the plugin an item comes with (a flea entry here)."""

    name: str
    hue: int
    marketplace_id: str = "flea"


@dataclass(frozen=True)
class ItemParentState:
    card: ItemParent


@dataclass(frozen=True)
class FleaItemPage:
    """A skill, agent or command of a flea entry, shaped like the curated item page's data so the
    same template renders it (``state.card``, ``document``, ``usage``, ``invocations``)."""

    state: ItemParentState
    document: ItemDocument
    usage: Usage = ZERO
    invocations: None = None


def item_detail(viewer: Principal, entity_id: str, kind: str, item_id: str) -> FleaItemPage:
    """One item of the version the entry's page shows (the served one; owner and admins: the
    newest while nothing is served).

    Raises:
        NotFound: the entry is hidden or missing, or has no such item (``<kind>_not_found``).
    """
    detail = entity_detail(viewer, entity_id)
    entity = detail.page.entity
    item = detail.contents.find(kind, item_id) if kind in ITEM_KINDS else None
    document = None
    if item is not None and detail.shown_version is not None:
        sha = next((v.get("sha256") for v in detail.page.versions if v["number"] == detail.shown_version), None)
        document = item_document(store.version_dir(entity.id, detail.shown_version), sha, item)
    if document is None:
        raise NotFound(f"{kind}_not_found", f"'{entity.name}' has no {kind} '{item_id}'.")
    return FleaItemPage(state=ItemParentState(ItemParent(entity.name, detail.hue)), document=document)


# Words for the flea tab's sorts.
SORT_LABELS = {
    "recent": "Recently added",
    "name": "Name",
    "most_installed": "Most installed",
    "updated": "Recently updated",
}


def tab_url(base: str, filters: TabFilters, **changes: Any) -> str:
    """``base`` (the listing's URL) with the flea tab's query string for ``filters`` changed by
    ``changes`` (``type`` for the kind); defaults are left out."""
    values: dict[str, Any] = {
        "tab": "flea",
        "q": filters.q,
        "type": filters.kind,
        "category": filters.category,
        "sort": filters.sort,
        "page": filters.page,
    }
    values.update(changes)
    defaults = {"q": "", "type": "", "category": "", "sort": "recent", "page": 1}
    args = {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}
    return f"{base}?{urlencode(args)}"


def upload_choices() -> dict[str, Any]:
    """The upload form's choices: ``kinds`` [(value, label)] and ``categories``."""
    return {"kinds": [(k, KIND_LABELS[k]) for k in KINDS], "categories": list(CATEGORIES)}

"""The marketplace listing: one data function for the page, its fragment and ``/api/marketplace/items``.

Cost model (issue 4 targets a full HTML page of 24 cards at >= 225 requests/s on 2 cores):

* one state-store unit per request, holding three small reads: the catalog version, the
  viewer's granted plugin ids and their subscriptions (:mod:`agnes.models.catalog`);
* the cards themselves (names, descriptions, counts written by the sync) are built once per
  catalog version and kept in the process (:class:`CatalogCache`); filtering, sorting and
  paging 300 cards in Python takes well under a millisecond, so no per-card query exists.

Visibility (DESIGN.md, "The served marketplace"; matches :mod:`agnes.marketplace.stack`):
the *curated* tab lists plugins granted to any of the viewer's groups plus system plugins
(admins get no shortcut); *my* lists the viewer's stack, i.e. those of them the viewer
subscribed to, plus system plugins, which everyone keeps.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask import current_app

from agnes.access import Principal
from agnes.errors import Invalid

# Cards per page by default, and the most a client may ask for.
DEFAULT_PAGE_SIZE = 24
MAX_PAGE_SIZE = 100
# Longest search query accepted, in characters.
MAX_QUERY = 200
# Category shown for plugins without one (the original's bucket name).
OTHER = "Other"
# Number of avatar colours defined in app.css (.hue-0 ... .hue-7).
HUES = 8


class Tab(StrEnum):
    CURATED = "curated"
    MY = "my"


class Sort(StrEnum):
    RECENT = "recent"
    NAME = "name"


class ItemType(StrEnum):
    """Type filter: plugins that contain at least one item of the kind (``any``: no filter)."""

    ANY = "any"
    SKILL = "skill"
    AGENT = "agent"
    COMMAND = "command"


TAB_LABELS = {Tab.CURATED: "Curated", Tab.MY: "My stack"}
SORT_LABELS = {Sort.RECENT: "Recently added", Sort.NAME: "Name"}
TYPE_LABELS = {
    ItemType.ANY: "Any type",
    ItemType.SKILL: "Skills",
    ItemType.AGENT: "Agents",
    ItemType.COMMAND: "Commands",
}


@dataclass(frozen=True)
class ListingQuery:
    """What the viewer asked for (from query-string arguments)."""

    tab: Tab = Tab.CURATED
    q: str = ""
    category: str = ""
    type: ItemType = ItemType.ANY
    sort: Sort = Sort.RECENT
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query-string arguments for a link to this listing with ``changes`` (defaults left out)."""
        values = {
            "tab": self.tab.value,
            "q": self.q,
            "category": self.category,
            "type": self.type.value,
            "sort": self.sort.value,
            "page": self.page,
            "page_size": self.page_size,
        }
        values.update(changes)
        defaults = ListingQuery()
        out: dict[str, Any] = {}
        for key, value in values.items():
            default = getattr(defaults, key)
            default = default.value if isinstance(default, StrEnum) else default
            value = value.value if isinstance(value, StrEnum) else value
            if value not in ("", None) and value != default:
                out[key] = value
        return out


def _enum(cls: type[StrEnum], value: str | None, name: str, default: StrEnum) -> Any:
    if value in (None, ""):
        return default
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise Invalid(
            f"invalid_{name}", f"'{value}' is not a valid {name}; use one of: {allowed}.", field=name
        ) from None


def _int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"invalid_{name}", f"{name} must be a whole number.", field=name) from None
    if not low <= number <= high:
        raise Invalid(f"invalid_{name}", f"{name} must be between {low} and {high}.", field=name)
    return number


def parse_listing_query(args: Mapping[str, str]) -> ListingQuery:
    """Validate query-string arguments. Raises Invalid (400) naming the bad field."""
    item_type = args.get("type")
    return ListingQuery(
        tab=_enum(Tab, args.get("tab"), "tab", Tab.CURATED),
        q=" ".join((args.get("q") or "").split())[:MAX_QUERY],
        category=(args.get("category") or "").strip()[:MAX_QUERY],
        # "plugin" (the original's type for curated entries) means no filter here.
        type=_enum(ItemType, None if item_type == "plugin" else item_type, "type", ItemType.ANY),
        sort=_enum(Sort, args.get("sort"), "sort", Sort.RECENT),
        page=_int(args.get("page"), "page", 1, 1, 100_000),
        page_size=_int(args.get("page_size"), "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    )


# -- cards ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """What a listing shows of one curated plugin (built once per catalog version)."""

    id: str  # <slug>/<plugin>
    marketplace_id: str
    name: str
    manifest_name: str
    description: str
    marketplace_name: str
    curator: str
    author: str
    category: str  # '' when the plugin has none
    version: str
    skill_count: int
    agent_count: int
    command_count: int
    is_system: bool
    available: bool
    created_at: datetime | None
    initials: str
    hue: int
    search_text: str  # lower-cased name, description, author and category

    @property
    def category_label(self) -> str:
        return self.category or OTHER

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "marketplace": self.marketplace_id,
            "marketplace_name": self.marketplace_name,
            "name": self.name,
            "manifest_name": self.manifest_name,
            "description": self.description,
            "curator": self.curator,
            "author": self.author,
            "category": self.category_label,
            "version": self.version,
            "skills": self.skill_count,
            "agents": self.agent_count,
            "commands": self.command_count,
            "is_system": self.is_system,
            "available": self.available,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def initials(name: str) -> str:
    """Two letters for an avatar: first letters of the first two words (``data-engineering`` → ``DE``)."""
    words = [w for w in name.replace("_", " ").replace("-", " ").replace(".", " ").split() if w[:1].isalnum()]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return (words[0][0] + words[1][0]).upper()


def make_card(plugin: Any, marketplace_name: str, curator: str) -> Card:
    """A Card from a :class:`agnes.models.marketplaces.Plugin` row."""
    category = (plugin.category or "").strip()
    author = plugin.author_name or ""
    return Card(
        id=f"{plugin.marketplace_id}/{plugin.name}",
        marketplace_id=plugin.marketplace_id,
        name=plugin.name,
        manifest_name=plugin.manifest_name,
        description=plugin.description or "",
        marketplace_name=marketplace_name,
        curator=curator,
        author=author,
        category=category,
        version=plugin.version or "",
        skill_count=plugin.skill_count,
        agent_count=plugin.agent_count,
        command_count=plugin.command_count,
        is_system=bool(plugin.is_system),
        available=bool(plugin.available),
        created_at=plugin.created_at,
        initials=initials(plugin.name),
        hue=zlib.crc32(plugin.name.encode()) % HUES,
        search_text=" ".join([plugin.name, plugin.manifest_name, plugin.description or "", author, category]).lower(),
    )


@dataclass(frozen=True)
class Catalog:
    """Every curated plugin's card, in both sort orders."""

    recent: tuple[Card, ...] = ()
    by_name: tuple[Card, ...] = ()
    curators: tuple[tuple[str, str], ...] = ()  # (name, email) of marketplace curators

    def ordered(self, sort: Sort) -> tuple[Card, ...]:
        return self.by_name if sort is Sort.NAME else self.recent


def build_catalog(con: Any) -> Catalog:
    """Read every plugin and marketplace (only when the catalog version changed)."""
    from agnes.models import marketplaces

    registry = {m.id: m for m in marketplaces.list_marketplaces(con)}
    cards = []
    for plugin in marketplaces.list_plugins(con):
        mp = registry.get(plugin.marketplace_id)
        cards.append(make_card(plugin, mp.name if mp else plugin.marketplace_id, mp.curator_name if mp else ""))
    oldest = datetime.min
    recent = sorted(cards, key=lambda c: (c.name.lower(), c.marketplace_id))
    recent.sort(key=lambda c: c.created_at or oldest, reverse=True)
    by_name = sorted(cards, key=lambda c: (c.name.lower(), c.marketplace_id))
    curators = tuple(
        dict.fromkeys(
            (m.curator_name or m.curator_email, m.curator_email) for m in registry.values() if m.curator_email
        )
    )
    return Catalog(recent=tuple(recent), by_name=tuple(by_name), curators=curators)


class CatalogCache:
    """The process's catalog, rebuilt when :func:`agnes.models.catalog.catalog_version` changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[Any, ...] | None = None
        self._catalog = Catalog()

    def get(self, con: Any) -> Catalog:
        """The current catalog; call inside the request's state-store unit."""
        from agnes.models.catalog import catalog_version

        version = catalog_version(con)
        if version == self._version:
            return self._catalog
        with self._lock:
            if version != self._version:
                self._catalog = build_catalog(con)
                self._version = version
            return self._catalog

    def clear(self) -> None:
        with self._lock:
            self._version = None


def catalog_cache() -> CatalogCache:
    cache = current_app.extensions.get("agnes_marketplace_catalog")
    if cache is None:
        cache = current_app.extensions.setdefault("agnes_marketplace_catalog", CatalogCache())
    return cache


# -- the page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardView:
    card: Card
    in_stack: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.card.to_dict(), "in_stack": self.in_stack}


@dataclass(frozen=True)
class ListingPage:
    """Everything the listing page, its fragment and the JSON twin show.

    Attributes:
        cards: this page's cards.
        total: cards matching the query across all pages.
        categories: ``(name, count)`` within the tab after search and type filters.
        tab_counts: matches per tab for the same search and type filters.
        empty: why there is nothing to show: ``no_grants`` (nothing is shared with the viewer),
            ``empty_stack`` (the viewer added nothing), ``no_match`` (filters exclude all), or None.
        contacts: ``(name, email)`` of people to ask for access (only for ``no_grants``).
    """

    query: ListingQuery
    cards: list[CardView]
    total: int
    categories: list[tuple[str, int]]
    tab_counts: dict[str, int]
    empty: str | None = None
    contacts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self.total / self.query.page_size))

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "items": [c.to_dict() for c in self.cards],
            "total": self.total,
            "page": q.page,
            "page_size": q.page_size,
            "pages": self.page_count,
            "tab": q.tab.value,
            "q": q.q,
            "category": q.category,
            "type": q.type.value,
            "sort": q.sort.value,
            "available_sorts": [s.value for s in Sort],
            "categories": [{"name": name, "count": count} for name, count in self.categories],
            "tab_counts": self.tab_counts,
            "empty": self.empty,
        }


def _matches(card: Card, terms: list[str], item_type: ItemType) -> bool:
    if item_type is ItemType.SKILL and not card.skill_count:
        return False
    if item_type is ItemType.AGENT and not card.agent_count:
        return False
    if item_type is ItemType.COMMAND and not card.command_count:
        return False
    return all(term in card.search_text for term in terms)


def listing_page(principal: Principal, query: ListingQuery) -> ListingPage:
    """The viewer's listing for ``query`` (one state-store unit)."""
    from agnes.models.catalog import list_admin_contacts, viewer_plugin_ids
    from agnes.state import state_store

    contacts: list[tuple[str, str]] = []
    with state_store().read() as con:
        catalog = catalog_cache().get(con)
        granted, subscribed = viewer_plugin_ids(con, principal.user.id, list(principal.group_ids))
        visible = [c for c in catalog.ordered(query.sort) if c.is_system or c.id in granted]
        if not visible:
            contacts = list_admin_contacts(con)
    stack = [c for c in visible if c.is_system or c.id in subscribed]
    terms = query.q.lower().split()
    matching = {
        Tab.CURATED: [c for c in visible if _matches(c, terms, query.type)],
        Tab.MY: [c for c in stack if _matches(c, terms, query.type)],
    }
    in_tab = matching[query.tab]
    counts: dict[str, int] = {}
    for card in in_tab:
        counts[card.category_label] = counts.get(card.category_label, 0) + 1
    if query.category and query.category not in counts:
        counts[query.category] = 0
    categories = sorted(counts.items(), key=lambda kv: (kv[0] == OTHER, kv[0].lower()))
    if query.category:
        in_tab = [c for c in in_tab if c.category_label == query.category]
    start = (query.page - 1) * query.page_size
    page_cards = in_tab[start : start + query.page_size]
    empty = None
    if not visible:
        empty = "no_grants"
    elif query.tab is Tab.MY and not stack:
        empty = "empty_stack"
    elif not in_tab:
        empty = "no_match"
    if empty == "no_grants" and catalog.curators:
        contacts = contacts + [c for c in catalog.curators if c not in contacts]
    return ListingPage(
        query=query,
        cards=[CardView(c, c.is_system or c.id in subscribed) for c in page_cards],
        total=len(in_tab),
        categories=categories,
        tab_counts={tab.value: len(cards) for tab, cards in matching.items()},
        empty=empty,
        contacts=contacts,
    )

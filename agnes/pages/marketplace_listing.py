"""The marketplace listing: one data function for the page, its fragment and ``/api/marketplace/items``.

Cost model (issue 4 targets a full HTML page of 24 cards at >= 225 requests/s on 2 cores):
the cards (names, descriptions, counts written by the sync) and the viewer's grants and
subscriptions come from the process cache of :mod:`agnes.marketplace.cards`; filtering,
sorting and paging 300 cards in Python takes well under a millisecond, and no per-card query
exists.

Visibility (DESIGN.md, "The served marketplace"; matches :mod:`agnes.marketplace.stack`):
the *curated* tab lists plugins granted to any of the viewer's groups plus system plugins
(admins get no shortcut); *my* lists the viewer's stack, i.e. those of them the viewer
subscribed to, plus system plugins, which everyone keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from agnes.access import Principal
from agnes.errors import Invalid
from agnes.marketplace.cards import OTHER, Card, cards_and_viewer
from agnes.models.plugin_cards import list_admin_contacts
from agnes.state import state_store
from agnes.telemetry.popularity import ZERO, Usage, UsageIndex, most_popular_order, usage_index
from agnes.units import page_count

# Cards per page by default, and the most a client may ask for.
DEFAULT_PAGE_SIZE = 24
MAX_PAGE_SIZE = 100
# Longest search query accepted, in characters.
MAX_QUERY = 200


class Tab(StrEnum):
    CURATED = "curated"
    MY = "my"


class Sort(StrEnum):
    RECENT = "recent"
    NAME = "name"
    USED = "used"  # calls in the last 30 days
    ADOPTED = "adopted"  # distinct users in the last 30 days
    TRENDING = "trending"  # change of calls, last 7 days against the 7 before (offered only when one has a trend)


class ItemType(StrEnum):
    """Type filter: plugins that contain at least one item of the kind (``any``: no filter)."""

    ANY = "any"
    SKILL = "skill"
    AGENT = "agent"
    COMMAND = "command"


TAB_LABELS = {Tab.CURATED: "Curated", Tab.MY: "My stack"}
SORT_LABELS = {
    Sort.RECENT: "Recently added",
    Sort.NAME: "Name",
    Sort.USED: "Most used",
    Sort.ADOPTED: "Most adopted",
    Sort.TRENDING: "Trending",
}
# Cards in Most Popular (page 1 of the tab, no search or filter).
POPULAR_COUNT = 4
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
            "tab": self.tab,
            "q": self.q,
            "category": self.category,
            "type": self.type,
            "sort": self.sort,
            "page": self.page,
            "page_size": self.page_size,
        }
        values.update(changes)
        # StrEnum members equal their values, so "curated" == Tab.CURATED here.
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in values.items() if v != _DEFAULT_ARGS[k]}

    def url(self, base: str, **changes: Any) -> str:
        """``base`` (the listing's ``url_for``) with the query string of :meth:`args`."""
        args = self.args(**changes)
        return f"{base}?{urlencode(args)}" if args else base


# The value of each listing argument that a URL leaves out.
_DEFAULT_ARGS: dict[str, Any] = {
    "tab": Tab.CURATED,
    "q": "",
    "category": "",
    "type": ItemType.ANY,
    "sort": Sort.RECENT,
    "page": 1,
    "page_size": DEFAULT_PAGE_SIZE,
}


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


# -- the page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardView:
    card: Card
    in_stack: bool
    usage: Usage = ZERO  # 30-day figures (the chip)

    def to_dict(self) -> dict[str, Any]:
        return {**self.card.to_dict(), "in_stack": self.in_stack, "usage": self.usage.to_dict()}


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
    popular: list[CardView] = field(default_factory=list)
    sorts: list[Sort] = field(default_factory=lambda: [Sort.RECENT, Sort.NAME, Sort.USED, Sort.ADOPTED])

    @property
    def page_count(self) -> int:
        return page_count(self.total, self.query.page_size)

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
            "available_sorts": [s.value for s in self.sorts],
            "most_popular": [c.to_dict() for c in self.popular],
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


def _sorted(cards: tuple[Card, ...], sort: Sort, usage: UsageIndex) -> tuple[Card, ...]:
    """``cards`` (in name order) by a usage sort; ties keep the name order."""
    if sort is Sort.USED:
        return tuple(sorted(cards, key=lambda c: (-usage.plugin(c.id).calls_30d, -usage.plugin(c.id).users_30d)))
    if sort is Sort.ADOPTED:
        return tuple(sorted(cards, key=lambda c: (-usage.plugin(c.id).users_30d, -usage.plugin(c.id).calls_30d)))
    if sort is Sort.TRENDING:
        return tuple(
            sorted(
                cards,
                key=lambda c: (usage.plugin(c.id).trend_pct is None, -(usage.plugin(c.id).trend_pct or 0)),
            )
        )
    return cards


def listing_page(principal: Principal, query: ListingQuery) -> ListingPage:
    """The viewer's listing for ``query`` (no state-store unit when the caches are current)."""
    card_set, viewer = cards_and_viewer(principal)
    usage = usage_index()
    by_name = query.sort not in (Sort.RECENT,)
    visible, stack = viewer.cards(card_set, by_name=by_name)
    if query.sort in (Sort.USED, Sort.ADOPTED, Sort.TRENDING):
        visible, stack = _sorted(visible, query.sort, usage), _sorted(stack, query.sort, usage)
    terms = query.q.lower().split()
    if terms or query.type is not ItemType.ANY:
        matching = {
            Tab.CURATED: [c for c in visible if _matches(c, terms, query.type)],
            Tab.MY: [c for c in stack if _matches(c, terms, query.type)],
        }
    else:
        matching = {Tab.CURATED: list(visible), Tab.MY: list(stack)}
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
    contacts: list[tuple[str, str]] = []
    if not visible:
        empty = "no_grants"
        contacts = _contacts(card_set.curators)
    elif query.tab is Tab.MY and not stack:
        empty = "empty_stack"
    elif not in_tab:
        empty = "no_match"
    popular: list[CardView] = []
    filtering = bool(terms or query.category or query.type is not ItemType.ANY)
    if query.tab is Tab.CURATED and query.page == 1 and not filtering:
        used = [c for c in visible if usage.plugin(c.id).calls_30d]
        used.sort(key=lambda c: most_popular_order(usage.plugin(c.id), c.name, c.marketplace_id))
        popular = [CardView(c, viewer.has_in_stack(c), usage.plugin(c.id)) for c in used[:POPULAR_COUNT]]
    sorts = [Sort.RECENT, Sort.NAME, Sort.USED, Sort.ADOPTED]
    if any(usage.plugin(c.id).trend_pct is not None for c in visible):
        sorts.append(Sort.TRENDING)
    return ListingPage(
        query=query,
        cards=[CardView(c, viewer.has_in_stack(c), usage.plugin(c.id)) for c in page_cards],
        popular=popular,
        sorts=sorts,
        total=len(in_tab),
        categories=categories,
        tab_counts={tab.value: len(cards) for tab, cards in matching.items()},
        empty=empty,
        contacts=contacts,
    )


def _contacts(curators: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Administrators, then curators: who a viewer without grants can ask (one unit, rare)."""

    with state_store().read() as con:
        admins = list_admin_contacts(con)
    return admins + [c for c in curators if c not in admins]

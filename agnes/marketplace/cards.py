"""Plugin cards and what each viewer may see, cached in the process.

The marketplace pages must answer a full HTML listing of 24 cards at >= 225 requests/s on two
cores (issue 4). A state-store unit plus a few DuckDB queries costs several milliseconds, so on
the common path the pages make **no** state-store unit of their own (the sign-in check makes
the request's one unit):

* the :class:`CardSet` (every plugin's card, built from ``marketplace_plugins`` and
  ``marketplace_registry``) is rebuilt only when :func:`agnes.models.plugin_cards.cards_version`
  changes;
* a viewer's granted and subscribed plugin ids are cached per (user, groups);
* both are keyed by the served-marketplace change marker (``agnes.markers.MARKETPLACE``),
  which every writer that changes grants, subscriptions, memberships, syncs or system flags
  bumps inside its write unit; a request that sees an unchanged marker can use the cache.
  Writes that do not bump it (e.g. renaming a marketplace) show up within :data:`RECHECK_SECONDS`,
  when entries are revalidated against the database anyway.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app

from agnes import markers
from agnes.access import Principal
from agnes.models import marketplaces
from agnes.models.plugin_cards import cards_version, viewer_plugin_ids
from agnes.state import state_store

# Category shown for plugins without one (the original's bucket name).
OTHER = "Other"
# Number of avatar colours defined in app.css (.hue-0 ... .hue-7).
HUES = 8
# Cached entries are revalidated against the database at least this often (seconds).
RECHECK_SECONDS = 10.0
# Viewers whose access sets stay cached per process.
VIEWER_CACHE_SIZE = 2048


@dataclass(frozen=True)
class Card:
    """What a listing shows of one curated plugin (built once per card-set version)."""

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


@dataclass(frozen=True)
class PluginFiles:
    """Fields of a plugin only its own pages need (not shown on cards)."""

    homepage: str
    curator_email: str
    unavailable_reason: str
    content_dir: str | None
    content_hash: str | None
    raw: dict[str, Any]


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


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per card-set version
class CardSet:
    """Every curated plugin's card in both sort orders, and the fields only plugin pages need."""

    recent: tuple[Card, ...] = ()
    by_name: tuple[Card, ...] = ()
    by_id: dict[str, Card] = field(default_factory=dict)
    files: dict[str, PluginFiles] = field(default_factory=dict)
    curators: tuple[tuple[str, str], ...] = ()  # (name, email) of marketplace curators


def build_cards(con: Any) -> CardSet:
    """Read every plugin and marketplace (only when the card-set version changed)."""
    by_slug = {m.id: m for m in marketplaces.list_marketplaces(con)}
    cards = []
    files = {}
    for plugin in marketplaces.list_plugins(con):
        mp = by_slug.get(plugin.marketplace_id)
        card = make_card(plugin, mp.name if mp else plugin.marketplace_id, mp.curator_name if mp else "")
        cards.append(card)
        files[card.id] = PluginFiles(
            homepage=plugin.homepage or "",
            curator_email=mp.curator_email if mp else "",
            unavailable_reason=plugin.unavailable_reason or "",
            content_dir=plugin.content_dir,
            content_hash=plugin.content_hash,
            raw=plugin.raw if isinstance(plugin.raw, dict) else {},
        )
    by_name = sorted(cards, key=lambda c: (c.name.lower(), c.marketplace_id))
    recent = sorted(by_name, key=lambda c: c.created_at or datetime.min, reverse=True)  # stable: ties by name
    curators = tuple(
        dict.fromkeys((m.curator_name or m.curator_email, m.curator_email) for m in by_slug.values() if m.curator_email)
    )
    return CardSet(
        recent=tuple(recent), by_name=tuple(by_name), by_id={c.id: c for c in cards}, files=files, curators=curators
    )


@dataclass(frozen=True)
class Viewer:
    """What one viewer reaches: plugin ids granted to their groups and those they subscribed to."""

    granted: frozenset[str]
    subscribed: frozenset[str]
    # (card_set, by_name) → (visible cards, cards in the stack); filled by :meth:`cards`.
    _memo: dict[tuple[CardSet, bool], tuple[tuple[Card, ...], tuple[Card, ...]]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def cards(self, card_set: CardSet, *, by_name: bool) -> tuple[tuple[Card, ...], tuple[Card, ...]]:
        """The set's cards this viewer sees, and those in their stack, in the set's order."""
        key = (card_set, by_name)
        found = self._memo.get(key)
        if found is None:
            ordered = card_set.by_name if by_name else card_set.recent
            visible = tuple(c for c in ordered if self.can_see(c))
            found = (visible, tuple(c for c in visible if self.has_in_stack(c)))
            if len(self._memo) > 8:  # a viewer outlives at most a few card-set versions
                self._memo.clear()
            self._memo[key] = found
        return found

    def can_see(self, card: Card) -> bool:
        return card.is_system or card.id in self.granted

    def has_in_stack(self, card: Card) -> bool:
        """System plugins are in everyone's stack; others when granted and subscribed."""
        return card.is_system or (card.id in self.granted and card.id in self.subscribed)


class _State:
    """The per-process cache (kept in ``app.extensions``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cards = CardSet()
        self.version: tuple[Any, ...] | None = None
        self.cards_marker: str | None = None
        self.cards_checked = 0.0
        self.viewers: OrderedDict[tuple[Any, ...], tuple[float, Viewer]] = OrderedDict()


def _state() -> _State:
    state = current_app.extensions.get("agnes_plugin_cards")
    if state is None:
        state = current_app.extensions.setdefault("agnes_plugin_cards", _State())
    return state


def cards_and_viewer(principal: Principal) -> tuple[CardSet, Viewer]:
    """The current card set and the viewer's access, from the cache when nothing changed.

    At most one state-store unit, and none when both are cached under the current marker.
    """
    state = _state()
    marker = markers.MARKETPLACE.current()  # read before the database: a later write bumps it again
    now = time.monotonic()
    key = (principal.user.id, principal.group_ids, marker)
    with state.lock:
        entry = state.viewers.get(key)
        viewer = entry[1] if entry and now - entry[0] < RECHECK_SECONDS else None
        cards_fresh = state.cards_marker == marker and now - state.cards_checked < RECHECK_SECONDS
        card_set = state.cards
    if viewer is not None and cards_fresh:
        return card_set, viewer
    with state_store().read() as con:
        if not cards_fresh:
            version = cards_version(con)
            if version != state.version:
                card_set = build_cards(con)
        if viewer is None:
            granted, subscribed = viewer_plugin_ids(con, principal.user.id, list(principal.group_ids))
            viewer = Viewer(frozenset(granted), frozenset(subscribed))
    with state.lock:
        if not cards_fresh:
            if version != state.version:
                state.cards, state.version = card_set, version
            state.cards_marker, state.cards_checked = marker, now
            card_set = state.cards
        state.viewers[key] = (now, viewer)
        state.viewers.move_to_end(key)
        while len(state.viewers) > VIEWER_CACHE_SIZE:
            state.viewers.popitem(last=False)
    return card_set, viewer


def is_granted(principal: Principal, resource_id: str) -> bool:
    """The plugin check of :mod:`agnes.access`: granted to one of the caller's groups, or a
    system plugin (every group has it). From the cache; no admin shortcut here."""
    card_set, viewer = cards_and_viewer(principal)
    card = card_set.by_id.get(resource_id)
    return card is not None and viewer.can_see(card)


def exists(principal: Principal, resource_id: str) -> bool:
    """True when a curated plugin ``<slug>/<plugin>`` is registered (so a refusal is a 403, not a 404)."""
    card_set, _ = cards_and_viewer(principal)
    return resource_id in card_set.by_id

"""Usage figures of plugins and their items for the marketplace pages, cached per process.

The listing must stay cheap (a full page at >= 225 requests/s, issue 4), so the figures are
read once per change: the index is rebuilt when :data:`agnes.markers.USAGE` (bumped by a
processing run) or :data:`agnes.markers.MARKETPLACE` (subscriptions) changes, and revalidated
at least every :data:`RECHECK_SECONDS`.

Figures (DESIGN.md, "Telemetry"): ``users_30d``/``users_7d`` are true distinct users over the
window; ``calls_*`` count uses; the trend compares the last 7 days with the 7 before and exists
only when those had at least :data:`TREND_MIN_CALLS` calls; ``daily`` is the last 30 days' calls,
oldest first (the sparkline).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app

from agnes import markers
from agnes.models import telemetry, utcnow
from agnes.state import state_store
from agnes.telemetry.attribution import split_identifier

# A trend needs at least this many calls in the prior week (fewer would make noise of ↑300%).
TREND_MIN_CALLS = 3
# Days of the sparkline.
SPARK_DAYS = 30
RECHECK_SECONDS = 10.0
# Item types an item page shows, as usage_events names them (subagents are agents).
ITEM_TYPES = ("skill", "agent", "command", "mcp")


@dataclass(frozen=True)
class Usage:
    """One plugin's or item's figures (all zero when nothing was used)."""

    users_30d: int = 0
    calls_30d: int = 0
    errors_30d: int = 0
    users_7d: int = 0
    calls_7d: int = 0
    prior_7d_calls: int = 0
    installed: int = 0
    active_days: int = 0
    last_used_at: datetime | None = None
    daily: tuple[int, ...] = ()

    @property
    def trend_pct(self) -> int | None:
        """Change of calls, last 7 days against the 7 before, in percent; None without a trend."""
        if self.prior_7d_calls < TREND_MIN_CALLS:
            return None
        return round((self.calls_7d - self.prior_7d_calls) * 100 / self.prior_7d_calls)

    @property
    def is_zero(self) -> bool:
        return not (self.users_30d or self.calls_30d or self.installed or self.trend_pct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "users_30d": self.users_30d,
            "calls_30d": self.calls_30d,
            "errors_30d": self.errors_30d,
            "users_7d": self.users_7d,
            "calls_7d": self.calls_7d,
            "trend_pct": self.trend_pct,
            "installed": self.installed,
            "active_days": self.active_days,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "daily": list(self.daily),
        }


ZERO = Usage(daily=(0,) * SPARK_DAYS)


@dataclass(frozen=True)
class UsageIndex:
    """``plugins``: by parent (curated ``<marketplace>/<plugin>``, flea entity id);
    ``items``: by ``(parent, item_type, item name)`` (the name without its plugin prefix)."""

    plugins: dict[str, Usage] = field(default_factory=dict)
    items: dict[tuple[str, str, str], Usage] = field(default_factory=dict)

    def plugin(self, parent: str) -> Usage:
        return self.plugins.get(parent, ZERO)

    def item(self, parent: str, item_type: str, name: str) -> Usage:
        return self.items.get((parent, item_type, name), ZERO)


def _local(name: str) -> str:
    return split_identifier(name)[1]


def build_index(con: Any, today: date) -> UsageIndex:
    """Read the rollups and subscriptions into an index (one unit; called when the markers change)."""
    first_day = today - timedelta(days=SPARK_DAYS - 1)
    prior_start, prior_end = today - timedelta(days=13), today - timedelta(days=7)
    acc: dict[tuple[str, str, str], dict[str, Any]] = {}

    def slot(key: tuple[str, str, str]) -> dict[str, Any]:
        found = acc.get(key)
        if found is None:
            found = acc[key] = {"daily": [0] * SPARK_DAYS, "prior": 0}
        return found

    for period, _source, item_type, parent, name, calls, errors, users, days, last in telemetry.window_rows(
        con, ("plugin", *ITEM_TYPES)
    ):
        if not parent:
            continue
        key = (parent, "plugin", "") if item_type == "plugin" else (parent, item_type, _local(name))
        entry = slot(key)
        if period == "last_30d":
            entry.update(users_30d=users, calls_30d=calls, errors_30d=errors, active_days=days, last_used_at=last)
        else:
            entry.update(users_7d=users, calls_7d=calls)
    for day, _source, item_type, parent, name, calls, _errors, _users in telemetry.daily_rows(
        con, ("plugin", *ITEM_TYPES), min(first_day, prior_start)
    ):
        if not parent:
            continue
        key = (parent, "plugin", "") if item_type == "plugin" else (parent, item_type, _local(name))
        entry = slot(key)
        if day >= first_day:
            entry["daily"][(day - first_day).days] += calls
        if prior_start <= day <= prior_end:
            entry["prior"] += calls
    for parent, count in telemetry.subscriber_counts(con).items():
        slot((parent, "plugin", ""))["installed"] = count
    plugins: dict[str, Usage] = {}
    items: dict[tuple[str, str, str], Usage] = {}
    for (parent, item_type, name), entry in acc.items():
        usage = Usage(
            users_30d=int(entry.get("users_30d", 0)),
            calls_30d=int(entry.get("calls_30d", 0)),
            errors_30d=int(entry.get("errors_30d", 0)),
            users_7d=int(entry.get("users_7d", 0)),
            calls_7d=int(entry.get("calls_7d", 0)),
            prior_7d_calls=int(entry["prior"]),
            installed=int(entry.get("installed", 0)),
            active_days=int(entry.get("active_days", 0)),
            last_used_at=entry.get("last_used_at"),
            daily=tuple(entry["daily"]),
        )
        if item_type == "plugin":
            plugins[parent] = usage
        else:
            items[(parent, item_type, name)] = usage
    return UsageIndex(plugins, items)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[str, str, date] | None = None
        self.checked = 0.0
        self.index = UsageIndex()


def usage_index() -> UsageIndex:
    """The current index, rebuilt only when the usage or marketplace marker changed (or the day did)."""
    state: _State = current_app.extensions.setdefault("agnes_usage_index", _State())
    key = (markers.USAGE.current(), markers.MARKETPLACE.current(), utcnow().date())
    now = time.monotonic()
    with state.lock:
        if state.key == key and now - state.checked < RECHECK_SECONDS:
            return state.index
    with state_store().read() as con:
        index = build_index(con, key[2])
    with state.lock:
        state.key, state.checked, state.index = key, now, index
    return index


def most_popular_order(usage: Usage, name: str, marketplace: str) -> tuple[Any, ...]:
    """Sort key of Most Popular: users, calls, users 7d, calls 7d (all descending), name, marketplace."""
    return (-usage.users_30d, -usage.calls_30d, -usage.users_7d, -usage.calls_7d, name.lower(), marketplace)

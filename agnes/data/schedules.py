"""Per-table sync schedules: ``every 15m``, ``every 2h``, ``daily 03:00[,15:00]`` or a cron expression.

All times are UTC. A table is *due* when a scheduled moment has passed since its last sync
attempt (so a failing table retries on its cadence, not every tick). A table without a
schedule syncs only on demand (Sync now, ``POST /api/sync/trigger``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agnes.errors import Invalid

EVERY_RE = re.compile(r"^every\s+(\d+)\s*(m|min|minutes?|h|hours?|d|days?)$")
DAILY_RE = re.compile(r"^daily\s+(\d{1,2}:\d{2}(\s*,\s*\d{1,2}:\d{2})*)$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
# Longest interval accepted (``every 366d``); longer ones overflow timedelta or mean "never".
MAX_INTERVAL_SECONDS = 366 * 86400


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; ``text`` is the normalized form stored in the registry."""

    text: str
    interval: timedelta | None = None
    times: tuple[tuple[int, int], ...] = ()
    cron: str | None = None

    def previous_run(self, now: datetime) -> datetime | None:
        """The latest scheduled moment at or before ``now`` (None for intervals)."""
        if self.times:
            candidates = []
            for day in (now.date(), now.date() - timedelta(days=1)):
                for hour, minute in self.times:
                    moment = datetime(day.year, day.month, day.day, hour, minute)
                    if moment <= now:
                        candidates.append(moment)
            return max(candidates)
        if self.cron:
            from croniter import CroniterError, croniter

            try:
                return croniter(self.cron, now + timedelta(seconds=1)).get_prev(datetime)
            except CroniterError:  # an expression that never fires (stored before it was refused)
                return None
        return None

    def next_run(self, last_attempt: datetime | None, now: datetime) -> datetime:
        """When the table is next due (``now`` if it is due already)."""
        if self.interval is not None:
            return now if last_attempt is None else max(now, last_attempt + self.interval)
        if self.is_due(last_attempt, now):
            return now
        if self.times:
            upcoming = []
            for day in (now.date(), now.date() + timedelta(days=1)):
                for hour, minute in self.times:
                    moment = datetime(day.year, day.month, day.day, hour, minute)
                    if moment > now:
                        upcoming.append(moment)
            return min(upcoming)
        from croniter import croniter

        return croniter(self.cron, now).get_next(datetime)

    def is_due(self, last_attempt: datetime | None, now: datetime) -> bool:
        if last_attempt is None:
            return True
        if self.interval is not None:
            return now - last_attempt >= self.interval
        previous = self.previous_run(now)
        return previous is not None and previous > last_attempt


def parse_schedule(text: Any) -> Schedule | None:
    """Parse and normalize a schedule; empty → None. Raises Invalid (field ``schedule``)."""
    if text is not None and not isinstance(text, str):
        raise Invalid("invalid_schedule", "The schedule must be text such as 'every 15m'.", field="schedule")
    raw = " ".join((text or "").strip().lower().split())
    if not raw:
        return None
    match = EVERY_RE.match(raw)
    if match:
        amount = int(match.group(1))
        unit = match.group(2)[0]
        if amount <= 0:
            raise Invalid("invalid_schedule", "An interval must be at least 1.", field="schedule")
        if unit == "m" and amount < 5:
            raise Invalid("invalid_schedule", "Sync at most every 5 minutes.", field="schedule")
        if amount * UNIT_SECONDS[unit] > MAX_INTERVAL_SECONDS:
            raise Invalid("invalid_schedule", "Sync at least every 366 days.", field="schedule")
        return Schedule(f"every {amount}{unit}", interval=timedelta(seconds=amount * UNIT_SECONDS[unit]))
    match = DAILY_RE.match(raw)
    if match:
        times = []
        for part in match.group(1).split(","):
            hour, minute = (int(x) for x in part.strip().split(":"))
            if hour > 23 or minute > 59:
                raise Invalid("invalid_schedule", f"{part.strip()} is not a time of day.", field="schedule")
            times.append((hour, minute))
        ordered = tuple(sorted(set(times)))
        return Schedule("daily " + ",".join(f"{h:02d}:{m:02d}" for h, m in ordered), times=ordered)
    fields = raw.split()
    if len(fields) == 5:
        from croniter import croniter

        if croniter.is_valid(raw):
            if not _fires(raw):
                raise Invalid("invalid_schedule", f"'{text}' never runs (no such date).", field="schedule")
            return Schedule(raw, cron=raw)
    raise Invalid(
        "invalid_schedule",
        f"'{text}' is not a schedule: use 'every 15m', 'every 2h', 'daily 03:00' or a cron expression.",
        field="schedule",
    )


def _fires(cron: str) -> bool:
    """Whether a valid cron expression ever matches (``0 0 31 2 *`` does not)."""
    from croniter import CroniterError, croniter

    try:
        croniter(cron, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterError:
        return False
    return True

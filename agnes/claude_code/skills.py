"""Skill health: how often Claude invoked each skill by itself versus a person typing it.

Claude Code's ``skill_activated`` event carries ``invocation_trigger``: ``claude-proactive``
when the model chose the skill from its description, ``user-slash`` when a person typed
``/<skill>`` (other values are counted as they come). A skill served to at least
:data:`WIDE_USERS` people that Claude never invoked by itself in :data:`WINDOW_DAYS` days is
flagged: its description may not match how people ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agnes.claude_code.fleet import FleetReport
from agnes.models import otel_events, utcnow
from agnes.plugin.contents import plugin_contents
from agnes.state import state_store

# invocation_trigger of a skill the model chose by itself.
PROACTIVE = "claude-proactive"
# invocation_trigger values of a skill a person typed.
TYPED = frozenset({"user-slash"})
# Served to at least this many people, a skill counts as installed widely.
WIDE_USERS = 10
# Days of events the counts cover.
WINDOW_DAYS = 30
# Why a skill is flagged (shown on its row).
FLAG = "Installed widely but never invoked by Claude itself: its description may not match how people ask."


@dataclass(frozen=True)
class SkillUsage:
    """Invocations of one skill over the window, by trigger."""

    proactive: int = 0
    typed: int = 0
    other: int = 0

    @classmethod
    def of(cls, triggers: dict[str, int]) -> SkillUsage:
        proactive = triggers.get(PROACTIVE, 0)
        typed = sum(n for t, n in triggers.items() if t in TYPED)
        return cls(proactive, typed, sum(triggers.values()) - proactive - typed)

    @property
    def total(self) -> int:
        return self.proactive + self.typed + self.other

    def to_dict(self) -> dict[str, int]:
        return {"by_claude": self.proactive, "typed": self.typed, "other": self.other, "days": WINDOW_DAYS}


@dataclass(frozen=True)
class SkillHealth:
    plugin_id: str
    skill: str
    served_to: int
    usage: SkillUsage

    @property
    def flagged(self) -> bool:
        return self.served_to >= WIDE_USERS and self.usage.proactive == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin_id,
            "skill": self.skill,
            "served_to": self.served_to,
            **self.usage.to_dict(),
            "flag": FLAG if self.flagged else None,
        }


def skill_usage(marketplace_id: str, plugin: str, skill: str, *, now: datetime | None = None) -> SkillUsage:
    """One skill's invocations by trigger over the window (the marketplace item stats)."""
    since = (now or utcnow()) - timedelta(days=WINDOW_DAYS)
    with state_store().read() as con:
        found = otel_events.skill_triggers(con, since, marketplace_id=marketplace_id, plugin=plugin)
    return SkillUsage.of(found.get((marketplace_id, plugin, skill), {}))


def skill_health(report: FleetReport, *, now: datetime | None = None) -> list[SkillHealth]:
    """Every skill of the served plugins that was invoked or is flagged: flagged first, then by
    invocations (most first)."""
    since = (now or utcnow()) - timedelta(days=WINDOW_DAYS)
    with state_store().read() as con:
        triggers = otel_events.skill_triggers(con, since)
    rows = []
    for health in report.plugins:
        plugin = health.served
        mp, name = plugin.marketplace_id, plugin.name
        names = {skill for (m, p, skill) in triggers if (m, p) == (mp, name)}
        if health.served_to >= WIDE_USERS and Path(plugin.content_dir).is_dir():
            contents = plugin_contents(plugin.content_dir, plugin.content_hash, plugin.raw)
            names |= {item.id for item in contents.items("skill")}
        for skill in names:
            usage = SkillUsage.of(triggers.get((mp, name, skill), {}))
            rows.append(SkillHealth(health.plugin_id, skill, health.served_to, usage))
    return sorted(rows, key=lambda r: (not r.flagged, -r.usage.total, r.plugin_id, r.skill))

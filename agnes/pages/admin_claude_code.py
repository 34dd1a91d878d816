"""Page data of ``/admin/claude-code`` (JSON twin ``/api/admin/claude-code``): a group's managed
settings with the diff against its previous download and where the file goes, and fleet health
(who runs the served version of each plugin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agnes import people
from agnes.claude_code import fleet, managed, skills
from agnes.claude_code.fleet import FleetReport
from agnes.claude_code.managed import ManagedSettings
from agnes.claude_code.skills import SkillHealth
from agnes.errors import Invalid
from agnes.jobs.health import GREEN, YELLOW, HealthField
from agnes.models import groups
from agnes.models.claude_code import SettingsDownload
from agnes.models.groups import EVERYONE_GROUP_ID, Group
from agnes.models.users import User
from agnes.pages.admin_users import UserSection
from agnes.state import state_store

# Query values read as "on" and "off" for the strict checkbox (a form sends "1" or nothing).
TRUE_VALUES = frozenset({"1", "true", "on", "yes"})
FALSE_VALUES = frozenset({"", "0", "false", "off", "no"})


def parse_strict(value: str | None) -> bool:
    """The ``strict`` query value as a bool. Raises Invalid (``invalid_strict``, field ``strict``)."""
    text = (value or "").strip().lower()
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise Invalid("invalid_strict", "strict must be 1 or 0.", field="strict")


@dataclass(frozen=True)
class ClaudeCodePage:
    groups: list[Group]
    managed: ManagedSettings
    previous: SettingsDownload | None
    diff: list[str]
    fleet: FleetReport
    skills: list[SkillHealth]

    @property
    def locations(self) -> tuple[tuple[str, str], ...]:
        return managed.LOCATIONS

    @property
    def mdm_locations(self) -> tuple[tuple[str, str], ...]:
        return managed.MDM_LOCATIONS

    def to_dict(self) -> dict[str, Any]:
        previous = self.previous
        return {
            "groups": [{"id": g.id, "name": g.name} for g in self.groups],
            "managed_settings": self.managed.to_dict(),
            "previous_download": (
                {
                    "downloaded_at": previous.downloaded_at.isoformat(),
                    "strict": previous.strict,
                    "sha256": previous.sha256,
                }
                if previous
                else None
            ),
            "changed_since_download": previous is not None and previous.content != self.managed.text,
            "diff": self.diff,
            "locations": [{"system": s, "path": p} for s, p in managed.LOCATIONS],
            "mdm": [{"system": s, "how": h} for s, h in managed.MDM_LOCATIONS],
            "fleet": self.fleet.to_dict(),
            "skills": [s.to_dict() for s in self.skills],
        }


def claude_code_page(group_id: str = "", strict: bool = False) -> ClaudeCodePage:
    """The page for ``group_id`` (Everyone when empty). Raises NotFound (``group_not_found``)."""
    current = managed.managed_settings(group_id or EVERYONE_GROUP_ID, strict=strict)
    previous = managed.last_download(current.group.id)
    report = fleet.fleet_report()
    return ClaudeCodePage(
        people.list_groups(), current, previous, managed.diff(previous, current), report, skills.skill_health(report)
    )


def user_section_data(user: User) -> dict[str, Any]:
    """The admin user page's "Claude Code" section: what their Claude Code loaded from Agnes,
    against what Agnes serves them now."""
    with state_store().read() as con:
        group_ids = groups.list_user_group_ids(con, user.id)
    return {"loads": fleet.user_loads(user.id, group_ids)}


# Registered on the admin user page by agnes.views.admin.claude_code.
USER_SECTION = UserSection("claude_code", "Claude Code", "admin/users/_claude_code.html", user_section_data)


def fleet_health_fields(now: datetime) -> list[HealthField]:
    """The health pulse's "Claude Code plugins" field: yellow when more than 20 % of active users
    run a stale version of a required plugin for over a day (:mod:`agnes.claude_code.fleet`)."""
    pulse = fleet.fleet_report(now=now).pulse
    value = f"{pulse.stale_users} of {pulse.active_users} stale" if pulse.active_users else "no reports"
    return [
        HealthField(
            "claude_code_fleet",
            "Claude Code plugins",
            YELLOW if pulse.status == "yellow" else GREEN,
            value,
            pulse.reason + ".",
            {"action": "claude_code."},
            pulse.to_dict(),
        )
    ]

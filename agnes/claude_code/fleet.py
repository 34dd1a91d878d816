"""Fleet health: which Agnes plugins each person's Claude Code loaded last, against what Agnes
serves them now.

Built from ``plugin_loaded`` events (:mod:`agnes.claude_code.intake` keeps the newest per user,
Claude Code installation and plugin) and each active user's served set. Per served plugin:

* **current**: the user's most recently reporting installation loaded the served version;
* **behind**: it loaded another version; *since* is when Agnes began serving the version they
  lack (``claude_code_served_versions``);
* **not loaded**: the plugin is served to them and no installation of theirs reported it.

The pulse is ``yellow`` when more than :data:`STALE_SHARE` of active users (a Claude Code of
theirs reported within :data:`ACTIVE_DAYS`) have run a stale version of a required (system)
plugin for over :data:`STALE_AFTER`; ``green`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app

from agnes.marketplace import resolver
from agnes.models import json_value, otel_events, served, users, utcnow
from agnes.models.otel_events import PluginLoad
from agnes.state import state_store

# Share of active users on a stale required plugin above which the pulse turns yellow.
STALE_SHARE = 0.20
# How long someone may lag behind a newly served version before it counts as stale.
STALE_AFTER = timedelta(days=1)
# A user is active when a Claude Code of theirs reported within this many days.
ACTIVE_DAYS = 7
# Window of the hook failure counts.
HOOK_DAYS = 7


@dataclass(frozen=True)
class Lagging:
    """A user whose Claude Code runs another version than the one served."""

    user_id: str
    email: str
    loaded_version: str | None
    host: str | None
    last_loaded_at: datetime
    behind_since: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {k: json_value(v) for k, v in self.__dict__.items()}


@dataclass
class PluginHealth:
    served: resolver.ServedPlugin  # as first met in someone's served set
    plugin_id: str  # <marketplace>/<plugin>
    served_name: str
    version: str | None
    required: bool
    served_to: int = 0
    current: list[str] = field(default_factory=list)  # emails
    behind: list[Lagging] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)  # emails
    hook_runs: int = 0
    hook_failures: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.plugin_id,
            "served_name": self.served_name,
            "version": self.version,
            "required": self.required,
            "served_to": self.served_to,
            "current": len(self.current),
            "current_users": self.current,
            "behind": [b.to_dict() for b in self.behind],
            "not_loaded": self.not_loaded,
            "hook_runs": self.hook_runs,
            "hook_failures": self.hook_failures,
        }


@dataclass(frozen=True)
class Pulse:
    status: str  # green | yellow
    active_users: int
    stale_users: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FleetReport:
    plugins: list[PluginHealth]
    never_connected: list[str]  # emails of active users no Claude Code of theirs reported for
    pulse: Pulse
    loads: list[PluginLoad]

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugins": [p.to_dict() for p in self.plugins],
            "never_connected": self.never_connected,
            "pulse": self.pulse.to_dict(),
        }


def _newest_per_user(loads: list[PluginLoad]) -> dict[tuple[str, str], PluginLoad]:
    """``{(user id, plugin name as loaded): the most recently reporting installation's load}``."""
    newest: dict[tuple[str, str], PluginLoad] = {}
    for load in loads:
        key = (load.user_id, load.plugin_name)
        if key not in newest or newest[key].last_loaded_at < load.last_loaded_at:
            newest[key] = load
    return newest


def fleet_report(*, user_id: str | None = None, now: datetime | None = None) -> FleetReport:
    """Every served plugin's health (or one user's view with ``user_id``), in one read unit.

    Returns plugins ordered required first, then by id.
    """
    now = now or utcnow()
    data_dir = Path(current_app.config["AGNES_DATA_DIR"])
    with state_store().read() as con:
        served_rows = served.all_served_plugin_rows(con)
        emails = users.active_emails(con)
        loads = otel_events.list_plugin_loads(con, marketplace_name=resolver.MARKETPLACE_NAME, user_id=user_id)
        since = otel_events.served_since(con)
        hooks = otel_events.hook_failures_by_plugin(con, now - timedelta(days=HOOK_DAYS))
        system = {(p.marketplace_id, p.name) for p in resolver.system_set(con, data_dir).plugins}
    current_versions = {(row[0], row[1], row[3] or "") for rows in served_rows.values() for row in rows}
    if any(v not in since for v in current_versions):
        # A version synced since the last load report: it is served from now on, as far as we know.
        with state_store().write() as con:
            otel_events.record_served_versions(con, now)
            since = otel_events.served_since(con)
    newest = _newest_per_user(loads)
    plugins: dict[tuple[str, str], PluginHealth] = {}
    stale_users: set[str] = set()
    for uid, rows in served_rows.items():
        if uid not in emails or (user_id is not None and uid != user_id):
            continue
        for plugin in resolver.served_set_of(rows, data_dir).plugins:
            key = (plugin.marketplace_id, plugin.name)
            health = plugins.get(key)
            if health is None:
                health = plugins[key] = PluginHealth(
                    plugin, f"{plugin.marketplace_id}/{plugin.name}", plugin.served_name, plugin.version, key in system
                )
                health.hook_failures, health.hook_runs = hooks.get(key, (0, 0))
            health.served_to += 1
            load = newest.get((uid, plugin.served_name))
            if load is None:
                health.not_loaded.append(emails[uid])
            elif plugin.version is None or load.version == plugin.version:
                health.current.append(emails[uid])
            else:
                behind = since.get((plugin.marketplace_id, plugin.name, plugin.version or ""))
                health.behind.append(Lagging(uid, emails[uid], load.version, load.host, load.last_loaded_at, behind))
                if health.required and (behind is None or now - behind > STALE_AFTER):
                    stale_users.add(uid)
    reporting = {load.user_id for load in loads}
    active = {load.user_id for load in loads if now - load.last_loaded_at <= timedelta(days=ACTIVE_DAYS)}
    stale_active = stale_users & active
    share = len(stale_active) / len(active) if active else 0.0
    status = "yellow" if share > STALE_SHARE else "green"
    reason = (
        f"{len(stale_active)} of {len(active)} active users ({share:.0%}) run a stale required plugin for over a day"
        if active
        else "No Claude Code has reported in the last 7 days"
    )
    never = sorted(email for uid, email in emails.items() if uid not in reporting and (user_id in (None, uid)))
    ordered = sorted(plugins.values(), key=lambda p: (not p.required, p.plugin_id))
    for health in ordered:
        health.current.sort()
        health.not_loaded.sort()
        health.behind.sort(key=lambda b: b.email)
    return FleetReport(ordered, never, Pulse(status, len(active), len(stale_active), reason), loads)


@dataclass(frozen=True)
class UserLoad:
    """One of a user's plugin loads with what Agnes serves them now (the user page's rows)."""

    plugin_name: str
    installation: str
    host: str | None
    version: str | None
    served_version: str | None
    served: bool
    last_loaded_at: datetime

    @property
    def status(self) -> str:
        """``current``, ``behind`` or ``not_served`` (Agnes no longer serves it to them)."""
        if not self.served:
            return "not_served"
        return "current" if self.served_version is None or self.version == self.served_version else "behind"

    def to_dict(self) -> dict[str, Any]:
        return {**{k: json_value(v) for k, v in self.__dict__.items()}, "status": self.status}


def user_loads(user_id: str, group_ids: tuple[str, ...] | list[str]) -> list[UserLoad]:
    """What each of the user's Claude Code installations loaded from Agnes, against their served set."""
    by_name = {p.served_name: p for p in resolver.resolve(user_id, group_ids).plugins}
    with state_store().read() as con:
        loads = otel_events.list_plugin_loads(con, marketplace_name=resolver.MARKETPLACE_NAME, user_id=user_id)
    rows = []
    for load in loads:
        plugin = by_name.get(load.plugin_name)
        rows.append(
            UserLoad(
                load.plugin_name,
                load.installation,
                load.host,
                load.version,
                plugin.version if plugin else None,
                plugin is not None,
                load.last_loaded_at,
            )
        )
    return sorted(rows, key=lambda r: (r.plugin_name, r.host or r.installation))

"""The writes of Google Workspace group sync: linked groups and ``google_sync`` membership rows.

The directory's answer is applied as a diff in one write unit: groups are created (and linked by
their Workspace email) as they appear, each membership added or removed sends
``membership_changed`` (so cached callers, served marketplaces and table access follow at once),
and the run is recorded in ``google_sync_runs`` with its audit row. Rows written by other
sources (an admin, the seed admin) are never touched. Two guards hold: a directory run that
would remove more than ``max_removal_pct`` of the Google rows writes nothing (a misconfigured
prefix or an outage must not empty the groups), and the last active administrator is never
removed from Admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from duckdb import DuckDBPyConnection

from agnes import audit, signals
from agnes.models import google_sync, groups, users, utcnow
from agnes.models.groups import ADMIN_GROUP_ID, MembershipSource
from agnes.state import state_store

GOOGLE = MembershipSource.GOOGLE_SYNC
CREATED_BY = "system:google-sync"


@dataclass(frozen=True)
class SyncOutcome:
    """What one sync did. ``status``: ``ok``, ``failed`` (directory error: nothing changed) or
    ``braked`` (too many removals: nothing changed)."""

    status: str
    added: int = 0
    removed: int = 0
    groups: int = 0
    message: str | None = None
    kept_admins: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return self.message if self.status != "ok" else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "added": self.added,
            "removed": self.removed,
            "groups": self.groups,
            "message": self.message,
            "kept_admins": self.kept_admins,
        }


def _finish(
    con: DuckDBPyConnection, outcome: SyncOutcome, *, scope: str, user_id: str | None, started_at: datetime
) -> SyncOutcome:
    google_sync.record_run(
        con,
        scope=scope,
        user_id=user_id,
        started_at=started_at,
        finished_at=utcnow(),
        status=outcome.status,
        added=outcome.added,
        removed=outcome.removed,
        groups=outcome.groups,
        message=outcome.message,
    )
    audit.record(con, f"google_sync.{scope}", f"user:{user_id}" if user_id else "google:directory", **outcome.to_dict())
    return outcome


def record_failure(*, scope: str, user_id: str | None, started_at: datetime, error: str) -> SyncOutcome:
    """Record a run whose directory read failed (the rows stay as they are)."""
    with state_store().write() as con:
        return _finish(con, SyncOutcome("failed", message=error), scope=scope, user_id=user_id, started_at=started_at)


def _linked_groups(con: DuckDBPyConnection, found: dict[str, str], admin_group: str) -> dict[str, str]:
    """``{workspace email: group id}``, creating (and linking) the groups that do not exist yet."""
    linked: dict[str, str] = {}
    for email, name in sorted(found.items()):
        if email == admin_group:
            admin = groups.get_group(con, ADMIN_GROUP_ID)
            if admin is not None and admin.google_email != email:
                groups.set_google_email(con, ADMIN_GROUP_ID, email)
            linked[email] = ADMIN_GROUP_ID
            continue
        group = groups.get_group_by_google_email(con, email)
        if group is None:
            label = name if groups.get_group_by_name(con, name) is None else f"{name} ({email})"
            group = groups.create_group(
                con, label[:80], f"Mirrors the Google Workspace group {email}.", created_by=CREATED_BY
            )
            groups.set_google_email(con, group.id, email)
            signals.group_created.send(None, con=con, group_id=group.id)
            audit.record(
                con, "group.create", f"group:{group.id}", params_before={}, name=group.name, google_email=email
            )
        linked[email] = group.id
    return linked


def _apply(
    con: DuckDBPyConnection, wanted: set[tuple[str, str]], current: set[tuple[str, str]]
) -> tuple[int, int, list[str]]:
    """Add and remove ``(user_id, group_id)`` Google rows; returns (added, removed, admins kept)."""
    added = removed = 0
    kept: list[str] = []
    for user_id, group_id in sorted(wanted - current):
        groups.add_member(con, group_id, user_id, source=GOOGLE, added_by=CREATED_BY)
        signals.membership_changed.send(None, con=con, user_id=user_id, group_id=group_id)
        added += 1
    for user_id, group_id in sorted(current - wanted):
        if group_id == ADMIN_GROUP_ID:
            user = users.get_user(con, user_id)
            other_rows = groups.member_sources(con, user_id, [ADMIN_GROUP_ID]).get(ADMIN_GROUP_ID, ())
            if user and user.active and set(other_rows) == {GOOGLE.value} and groups.count_active_admins(con) <= 1:
                kept.append(user.email)
                continue
        groups.remove_member(con, group_id, user_id, sources=(GOOGLE,))
        signals.membership_changed.send(None, con=con, user_id=user_id, group_id=group_id)
        removed += 1
    return added, removed, kept


def _kept_message(kept: list[str]) -> str | None:
    if not kept:
        return None
    return f"Kept {', '.join(kept)} in Admin: the last active administrator is never removed."


def apply_user_groups(user_id: str, found: dict[str, str], *, admin_group: str, started_at: datetime) -> SyncOutcome:
    """One user's groups as the directory lists them (``{workspace email: name}``, prefix applied)."""
    with state_store().write() as con:
        linked = _linked_groups(con, found, admin_group)
        wanted = {(user_id, gid) for gid in linked.values()}
        added, removed, kept = _apply(con, wanted, groups.google_memberships(con, user_id))
        outcome = SyncOutcome("ok", added, removed, len(linked), _kept_message(kept), kept)
        return _finish(con, outcome, scope="user", user_id=user_id, started_at=started_at)


def apply_directory(
    found: dict[str, str],
    pairs: set[tuple[str, str]],
    *,
    admin_group: str,
    started_at: datetime,
    max_removal_pct: int,
) -> SyncOutcome:
    """Every matching group (``found``) and its members (``pairs`` of member email and group email).

    Members who have no Agnes account yet are skipped (they get their groups when they first sign
    in). If more than ``max_removal_pct`` percent of the existing Google rows would go, nothing is
    written but the run (status ``braked``) and its audit row.
    """
    with state_store().write() as con:
        current = groups.google_memberships(con)
        emails = sorted({member for member, _ in pairs})
        ids = users.ids_by_email(con, emails)
        linked_preview = {e: groups.get_group_by_google_email(con, e) for e in found if e != admin_group}
        known = {e: g.id for e, g in linked_preview.items() if g is not None}
        if admin_group in found:
            known[admin_group] = ADMIN_GROUP_ID
        # Rows of groups not created yet cannot be removed, so the brake can be judged before creating any.
        wanted_known = {(ids[m], known[g]) for m, g in pairs if m in ids and g in known}
        removals = len(current - wanted_known)
        if current and removals * 100 > max_removal_pct * len(current):
            message = (
                f"This sync would remove {removals} of {len(current)} Google memberships (more than"
                f" {max_removal_pct} %), so nothing was changed. Check the directory settings"
                " (AGNES_GOOGLE_GROUP_PREFIX, the service account's subject)"
                " or raise AGNES_GOOGLE_SYNC_MAX_REMOVAL_PCT."
            )
            outcome = SyncOutcome("braked", 0, 0, len(found), message)
            return _finish(con, outcome, scope="all", user_id=None, started_at=started_at)
        linked = _linked_groups(con, found, admin_group)
        wanted = {(ids[m], linked[g]) for m, g in pairs if m in ids and g in linked}
        added, removed, kept = _apply(con, wanted, current)
        outcome = SyncOutcome("ok", added, removed, len(found), _kept_message(kept), kept)
        return _finish(con, outcome, scope="all", user_id=None, started_at=started_at)

"""Why a user can or cannot reach a resource, and who can reach it: the answers admins ask for.

Both answers are built from the same parts that decide access, so they cannot disagree with it:
``allowed`` is :func:`agnes.access.can_access` for a principal of the user, ``served`` is the
type's own notion of delivery (a plugin in the served marketplace, a table in the ``agnes pull``
manifest, see :class:`agnes.access.ItemFacts`), and "who can reach it" is the members of the
groups the type says pass its check (``ResourceTypeSpec.granted_groups``) plus the Admin group,
whose members pass every app-level check (but get no shortcut in the served marketplace).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agnes.access import (
    RESOURCE_TYPES,
    AuthMethod,
    Principal,
    ResourceType,
    can_access,
    parse_resource_type,
    validate_resource_id,
)
from agnes.errors import NotFound
from agnes.models import grants, groups, served, subscriptions, users
from agnes.models.grants import SYSTEM_FANOUT, Grant
from agnes.models.groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID
from agnes.models.users import User
from agnes.state import state_store
from agnes.units import page_count

# Users per page of "who can reach it".
REACH_PER_PAGE = 50
ADMIN_NOTE = (
    "The Admin group passes every app-level check (admin pages, plugin pages, table downloads), but"
    " not the served marketplace: Claude Code gets only plugins granted to one of their groups."
)


def _day(value: datetime | None) -> str:
    return f"{value.day} {value:%b %Y}" if value else ""


@dataclass(frozen=True)
class Reason:
    """One group through which the user reaches the resource.

    ``sources`` are the user's membership sources in the group (``admin``, ``google_sync``,
    ``system_seed``; empty for Everyone, which is automatic).
    """

    group_id: str
    group: str
    sources: tuple[str, ...]
    granted_at: datetime | None
    granted_by: str | None  # the granting admin's email, "system fan-out", or None
    origin: str | None

    def phrase(self) -> str:
        """``Finance, added by ana@example.com on 3 May 2026`` (or just the group)."""
        if self.granted_at is None:
            return self.group
        by = f" by {self.granted_by}" if self.granted_by else ""
        verb = "granted" if self.origin == SYSTEM_FANOUT else "added"
        return f"{self.group}, {verb}{by} on {_day(self.granted_at)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id,
            "group": self.group,
            "sources": list(self.sources),
            "granted_at": self.granted_at.isoformat() if self.granted_at else None,
            "granted_by": self.granted_by,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Explanation:
    user: User
    resource_type: ResourceType
    resource_id: str
    label: str
    allowed: bool
    served: bool | None
    reasons: list[Reason]
    granted_to: list[str]  # names of every group granted the resource
    notes: list[str]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": {"id": self.user.id, "email": self.user.email, "active": self.user.active},
            "resource_type": self.resource_type.value,
            "resource_id": self.resource_id,
            "label": self.label,
            "allowed": self.allowed,
            "served": self.served,
            "reasons": [r.to_dict() for r in self.reasons],
            "granted_to": self.granted_to,
            "notes": self.notes,
            "summary": self.summary,
        }


def _grant_reason(grant: Grant, sources: tuple[str, ...]) -> Reason:
    by = "the system fan-out" if grant.origin == SYSTEM_FANOUT else (grant.assigned_by_email or None)
    return Reason(grant.group_id, grant.group_name, sources, grant.assigned_at, by, grant.origin)


def _names(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def explain(user_ref: str, resource_type: str, resource_id: str) -> Explanation:
    """Whether ``user_ref`` (id or email) can reach a resource, through which groups, and why not.

    Raises:
        AppError: 400 ``unknown_resource_type``, 400 ``invalid_resource_id`` (or
            ``resource_id_required``), 404 ``user_not_found``, 404 ``resource_not_found``.
    """
    rtype = parse_resource_type(resource_type)
    resource_id = validate_resource_id(rtype, resource_id)
    spec = RESOURCE_TYPES[rtype]
    with state_store().read() as con:
        user = users.get_user(con, user_ref) or users.get_user_by_email(con, user_ref)
        if user is None:
            raise NotFound("user_not_found", f"No user '{user_ref}'.", field="user")
        group_ids = groups.list_user_group_ids(con, user.id)
        granted = spec.granted_groups(con, rtype.value, resource_id)
        rows = grants.list_grants(con, resource_type=rtype.value, resource_id=resource_id)
        sources = groups.member_sources(con, user.id, group_ids)
        names = groups.group_names(con)
    principal = Principal(user=user, group_ids=tuple(group_ids), method=AuthMethod.SESSION)
    facts = spec.facts(principal, resource_id)
    if not facts.exists:
        raise NotFound("resource_not_found", f"There is no {spec.display_name.lower()} '{resource_id}'.")
    allowed = user.active and can_access(principal, rtype, resource_id)
    reasons = [_grant_reason(g, sources.get(g.group_id, ())) for g in rows if g.group_id in group_ids]
    if EVERYONE_GROUP_ID in granted and not any(r.group_id == EVERYONE_GROUP_ID for r in reasons):
        reasons.append(Reason(EVERYONE_GROUP_ID, names.get(EVERYONE_GROUP_ID, "Everyone"), (), None, None, None))
    reasons.sort(key=lambda r: (r.group_id == EVERYONE_GROUP_ID, r.group.lower()))
    granted_to = sorted((names.get(gid, gid) for gid in granted), key=str.lower)
    who = user.display_name
    notes = list(facts.notes)
    if ADMIN_GROUP_ID in group_ids:
        notes.append(ADMIN_NOTE)
    if not user.active:
        notes.insert(0, f"{who} is deactivated: sign-in and every token are refused, so they get nothing.")
        summary = f"{who} cannot {spec.verb} {facts.label}: the account is deactivated."
    elif allowed and reasons:
        summary = f"{who} can {spec.verb} {facts.label} through " + _names([r.phrase() for r in reasons]) + "."
    elif allowed:
        summary = f"{who} can {spec.verb} {facts.label} only as a member of Admin (it passes every app-level check)."
        reasons.append(
            Reason(
                ADMIN_GROUP_ID, names.get(ADMIN_GROUP_ID, "Admin"), sources.get(ADMIN_GROUP_ID, ()), None, None, None
            )
        )
    elif not granted_to:
        summary = f"{who} cannot {spec.verb} {facts.label}: it is granted to no group."
    elif len(granted_to) == 1:
        summary = f"{who} cannot {spec.verb} {facts.label}: it is granted only to {granted_to[0]}; they are not in it."
    else:
        summary = (
            f"{who} cannot {spec.verb} {facts.label}: it is granted to {_names(granted_to)}; they are in none of them."
        )
    return Explanation(
        user=user,
        resource_type=rtype,
        resource_id=resource_id,
        label=facts.label,
        allowed=allowed,
        served=facts.served,
        reasons=reasons,
        granted_to=granted_to,
        notes=notes,
        summary=summary,
    )


# -- who can reach a resource ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReachingUser:
    user_id: str
    email: str
    name: str
    via: list[str]  # group names through which they reach it (Admin: the admin pass)

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "email": self.email, "name": self.name, "via": self.via}


@dataclass(frozen=True)
class Reach:
    """Who reaches one resource: the grants, a page of the active users who pass
    :func:`agnes.access.can_access` for it, and for plugins who subscribed and who is served it."""

    resource_type: ResourceType
    resource_id: str
    label: str
    grants: list[Grant]
    granted_groups: list[str]
    users: list[ReachingUser]
    total: int
    page: int
    per_page: int
    subscribers: int | None
    served_to: list[tuple[str, str]] | None

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type.value,
            "resource_id": self.resource_id,
            "label": self.label,
            "grants": [g.to_dict() for g in self.grants],
            "granted_groups": self.granted_groups,
            "users": [u.to_dict() for u in self.users],
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "subscribers": self.subscribers,
            "served_to": [{"user_id": i, "email": e} for i, e in self.served_to]
            if self.served_to is not None
            else None,
        }


def reach(viewer: Principal, resource_type: str, resource_id: str, *, page: int = 1) -> Reach:
    """Who can reach a resource (one read unit). Raises like :func:`explain` (no user involved)."""
    rtype = parse_resource_type(resource_type)
    resource_id = validate_resource_id(rtype, resource_id)
    spec = RESOURCE_TYPES[rtype]
    facts = spec.facts(viewer, resource_id)
    page = max(1, page)
    with state_store().read() as con:
        rows = grants.list_grants(con, resource_type=rtype.value, resource_id=resource_id)
        if not facts.exists and not rows:
            raise NotFound("resource_not_found", f"There is no {spec.display_name.lower()} '{resource_id}'.")
        granted = spec.granted_groups(con, rtype.value, resource_id)
        found, total = groups.users_in_groups(
            con, granted | {ADMIN_GROUP_ID}, limit=REACH_PER_PAGE, offset=(page - 1) * REACH_PER_PAGE
        )
        names = groups.group_names(con)
        subscriber_count = served_to = None
        if rtype is ResourceType.MARKETPLACE_PLUGIN:
            slug, _, name = resource_id.partition("/")
            subscriber_count = len(subscriptions.subscribers(con, slug, name))
            served_to = served.users_served(con, slug, name)
    return Reach(
        resource_type=rtype,
        resource_id=resource_id,
        label=facts.label,
        grants=rows,
        granted_groups=sorted((names.get(g, g) for g in granted), key=str.lower),
        users=[ReachingUser(*r) for r in found],
        total=total,
        page=page,
        per_page=REACH_PER_PAGE,
        subscribers=subscriber_count,
        served_to=served_to,
    )

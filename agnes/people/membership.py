"""Groups and memberships: create, rename, delete, members, with their guards (system groups,
groups linked to Google Workspace, Everyone, the last active admin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agnes import audit, signals
from agnes.errors import Conflict, Invalid, NotFound
from agnes.models import grants, groups, users
from agnes.models.grants import Grant
from agnes.models.groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID, Group, MembershipSource
from agnes.models.users import User
from agnes.people.accounts import user_or_404, validate_email
from agnes.state import state_store

# Longest group name accepted (characters).
GROUP_NAME_MAX = 80
# Members shown with a group (the page says how many more there are).
MEMBERS_SHOWN = 200


def _google_managed(group: Group, what: str) -> Conflict:
    return Conflict(
        "google_managed",
        f"{group.name} mirrors the Google Workspace group {group.google_email}; {what} it in Google Workspace.",
    )


def _validate_group_name(name: object) -> str:
    if name is not None and not isinstance(name, str):
        raise Invalid("invalid_name", "Group name must be text.", field="name")
    name = (name or "").strip()
    if not name:
        raise Invalid("name_required", "Group name is required.", field="name")
    if len(name) > GROUP_NAME_MAX:
        raise Invalid("name_too_long", f"Group name must be at most {GROUP_NAME_MAX} characters.", field="name")
    return name


def _validate_description(description: object) -> str | None:
    if description is not None and not isinstance(description, str):
        raise Invalid("invalid_description", "Group description must be text.", field="description")
    return description


def list_groups() -> list[Group]:
    """Every group, system groups first, with member and grant counts and origin."""
    with state_store().read() as con:
        return groups.list_groups(con)


@dataclass(frozen=True)
class GroupDetail:
    """One group with its members and grants (read in one unit)."""

    group: Group
    members: list[groups.Member]
    grants: list[Grant]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.group.to_dict(),
            "members": [m.to_dict() for m in self.members],
            "grants": [g.to_dict() for g in self.grants],
        }


def group_detail(group_id: str, *, members_limit: int | None = None) -> GroupDetail:
    """The group, its first ``members_limit`` members (all when None) and its grants.
    Raises NotFound (``group_not_found``)."""
    with state_store().read() as con:
        group = groups.get_group(con, group_id, counts=True)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        return GroupDetail(
            group,
            groups.list_members(con, group_id, limit=members_limit),
            grants.list_grants(con, group_id=group_id),
        )


def group_names() -> dict[str, str]:
    """``{group id: name}``, system groups first (for pickers; no counts)."""
    with state_store().read() as con:
        return groups.group_names(con)


def get_group(group_id: str) -> Group:
    with state_store().read() as con:
        group = groups.get_group(con, group_id, counts=True)
    if group is None:
        raise NotFound("group_not_found", "No such group.")
    return group


def resolve_group(ref: str) -> Group:
    """A group by id or (case-insensitive) name."""
    with state_store().read() as con:
        group = groups.get_group(con, ref) or groups.get_group_by_name(con, ref)
    if group is None:
        raise NotFound("group_not_found", f"No group '{ref}'.")
    return group


def create_group(name: str, description: str | None = "", *, actor_id: str | None) -> Group:
    name = _validate_group_name(name)
    description = _validate_description(description)
    with state_store().write() as con:
        if groups.get_group_by_name(con, name):
            raise Conflict("group_exists", f"A group named '{name}' already exists.", field="name")
        group = groups.create_group(con, name, description or "", created_by=actor_id)
        signals.group_created.send(None, con=con, group_id=group.id)
        audit.record(
            con, "group.create", f"group:{group.id}", params_before={}, name=group.name, description=group.description
        )
    return group


def update_group(group_id: str, *, name: str | None = None, description: str | None = None) -> Group:
    """Rename or re-describe a group. System groups keep their names (409)."""
    description = _validate_description(description)
    with state_store().write() as con:
        group = groups.get_group(con, group_id)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        if name is not None:
            name = _validate_group_name(name)
            if name != group.name:
                if group.google_managed:
                    raise _google_managed(group, "rename")
                if group.is_system:
                    raise Conflict("system_group", "System groups cannot be renamed.", field="name")
                other = groups.get_group_by_name(con, name)
                if other and other.id != group_id:
                    raise Conflict("group_exists", f"A group named '{name}' already exists.", field="name")
            else:
                name = None
        groups.update_group(con, group_id, name=name, description=description)
        touched = (("name", group.name, name), ("description", group.description, description))
        before = {field: old for field, old, new in touched if new is not None} or None  # None: an empty edit
        audit.record(con, "group.update", f"group:{group_id}", params_before=before, name=name, description=description)
        updated = groups.get_group(con, group_id, counts=True)
    assert updated is not None
    return updated


def delete_group(group_id: str) -> Group:
    """Delete a group with its memberships and grants. System groups cannot be deleted (409)."""
    with state_store().write() as con:
        group = groups.get_group(con, group_id)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        if group.is_system:
            raise Conflict("system_group", f"'{group.name}' is a system group and cannot be deleted.")
        if group.google_managed:
            raise _google_managed(group, "delete")
        for grant in grants.list_grants(con, group_id=group_id):
            grants.delete_grant(con, grant.id)
            signals.grant_revoked.send(
                None,
                con=con,
                group_id=group_id,
                resource_type=grant.resource_type,
                resource_id=grant.resource_id,
                cascade=True,
            )
        members = groups.list_members(con, group_id)
        groups.delete_group(con, group_id)
        for member in members:
            signals.membership_changed.send(None, con=con, user_id=member.user_id, group_id=group_id)
        audit.record(
            con,
            "group.delete",
            f"group:{group_id}",
            params_before={"name": group.name, "description": group.description, "members": len(members)},
            name=group.name,
        )
    return group


def list_members(group_id: str) -> list[groups.Member]:
    with state_store().read() as con:
        if groups.get_group(con, group_id) is None:
            raise NotFound("group_not_found", "No such group.")
        return groups.list_members(con, group_id)


def add_member(group_id: str, email: str, *, actor_id: str | None) -> User:
    """Add an existing user (by email) to a group as an admin-managed member (beside any rows
    Google sync wrote: an admin may add people to a Workspace-linked group too).

    Raises NotFound (group, user), Invalid (bad email), Conflict (Everyone, already a member).
    """
    email = validate_email(email)
    with state_store().write() as con:
        user = users.get_user_by_email(con, email)
        _add_member(con, group_id, user, actor_id=actor_id, missing=f"No user with email {email}; add the user first.")
    assert user is not None
    return user


def add_membership(user_id: str, group_id: str, *, actor_id: str | None) -> Group:
    """:func:`add_member` by user id (the user page). Raises NotFound (user, group), Conflict."""
    with state_store().write() as con:
        user = user_or_404(con, user_id)
        return _add_member(con, group_id, user, actor_id=actor_id, missing="No such user.", field="group_id")


def _add_member(
    con: Any, group_id: str, user: User | None, *, actor_id: str | None, missing: str, field: str = "email"
) -> Group:
    group = groups.get_group(con, group_id)
    if group is None:
        raise NotFound("group_not_found", "No such group.")
    if group_id == EVERYONE_GROUP_ID:
        raise Conflict("implicit_group", "Everyone already includes every user.", field=field)
    if user is None:
        raise NotFound("user_not_found", missing)
    if groups.is_member(con, user.id, group_id):
        raise Conflict("already_member", f"{user.email} is already a member of {group.name}.", field=field)
    groups.add_member(con, group_id, user.id, source=MembershipSource.ADMIN, added_by=actor_id)
    signals.membership_changed.send(None, con=con, user_id=user.id, group_id=group_id)
    audit.record(
        con,
        "group.member_add",
        f"group:{group_id}",
        params_before={},
        user_id=user.id,
        email=user.email,
        source="admin",
    )
    return group


def memberships(user_id: str) -> list[groups.Membership]:
    """A user's groups with the source of each membership (Everyone first). Raises NotFound."""
    with state_store().read() as con:
        user_or_404(con, user_id)
        return groups.list_memberships(con, user_id)


def remove_member(group_id: str, user_id: str) -> None:
    """Remove a user's admin-managed (and seed) membership rows.

    Raises NotFound, Conflict (Everyone; the last active admin; membership managed by Google).
    """
    with state_store().write() as con:
        group = groups.get_group(con, group_id)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        if group_id == EVERYONE_GROUP_ID:
            raise Conflict("implicit_group", "Everyone includes every user; deactivate the user instead.")
        user = users.get_user(con, user_id)
        if user is None or not groups.is_member(con, user_id, group_id):
            raise NotFound("not_a_member", "That user is not a member of this group.")
        if group_id == ADMIN_GROUP_ID and user.active and groups.count_active_admins(con) <= 1:
            raise Conflict("last_admin", "You cannot remove the last administrator.")
        removed = groups.remove_member(
            con, group_id, user_id, sources=(MembershipSource.ADMIN, MembershipSource.SYSTEM_SEED)
        )
        if removed == 0:
            raise Conflict("managed_membership", "This membership comes from Google Workspace; change it there.")
        signals.membership_changed.send(None, con=con, user_id=user_id, group_id=group_id)
        audit.record(
            con,
            "group.member_remove",
            f"group:{group_id}",
            params_before={"user_id": user_id, "email": user.email, "group": group.name},
            user_id=user_id,
            email=user.email,
        )

"""Operations on users, groups, memberships and grants, with the guards users expect.

Each function is one unit of work on the state store and raises :class:`agnes.errors.AppError`
subclasses with the status, code and message a client sees. Views and the JSON API call these,
never the models directly, so the pages and the API enforce the same rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb

from agnes import audit, signals
from agnes.access import ResourceType, parse_resource_type, validate_resource_id
from agnes.errors import Conflict, Invalid, NotFound
from agnes.models import grants, groups, users, web_sessions
from agnes.models.grants import Grant
from agnes.models.groups import ADMIN_GROUP_ID, EVERYONE_GROUP_ID, Group, MembershipSource
from agnes.models.users import User
from agnes.state import state_store

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# Longest group name accepted (characters).
GROUP_NAME_MAX = 80


def validate_email(email: str, *, field: str = "email") -> str:
    email = users.normalize_email(email or "")
    if not email:
        raise Invalid("email_required", "An email address is required.", field=field)
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise Invalid("invalid_email", f"'{email}' is not a valid email address.", field=field)
    return email


def get_or_create_user(email: str, name: str = "", *, via: str) -> tuple[User, bool]:
    """The user with ``email``, created (with the ``user_created`` receivers, e.g. system plugins,
    and the audit row) in the same unit when missing. Returns ``(user, created)``.

    ``via`` names the path that created the user (``google``) in the audit row.
    """
    email = validate_email(email)
    with state_store().write() as con:
        user, created = users.get_or_create_user(con, email, name)
        if created:
            signals.user_created.send(None, con=con, user_id=user.id)
            audit.record(con, "user.create", f"user:{user.id}", email=user.email, via=via)
    return user, created


# -- users -------------------------------------------------------------------------------


def create_user(email: str, name: str = "") -> User:
    """Raises Invalid (bad email) or Conflict (``user_exists``)."""
    email = validate_email(email)
    with state_store().write() as con:
        if users.get_user_by_email(con, email):
            raise Conflict("user_exists", f"A user with email {email} already exists.", field="email")
        user = users.create_user(con, email, name)
        signals.user_created.send(None, con=con, user_id=user.id)
        audit.record(con, "user.create", f"user:{user.id}", email=user.email)
    return user


def ensure_seed_admin(email: str) -> User:
    """Create (if needed) the seed admin and make them an Admin member (source system_seed)."""
    email = validate_email(email, field="AGNES_SEED_ADMIN_EMAIL")
    with state_store().write() as con:
        user, created = users.get_or_create_user(con, email)
        if created:
            signals.user_created.send(None, con=con, user_id=user.id)
            audit.record(con, "user.create", f"user:{user.id}", email=user.email, via="AGNES_SEED_ADMIN_EMAIL")
        if groups.add_member(con, ADMIN_GROUP_ID, user.id, source=MembershipSource.SYSTEM_SEED, added_by="system:seed"):
            signals.membership_changed.send(None, con=con, user_id=user.id, group_id=ADMIN_GROUP_ID)
            audit.record(con, "group.member_add", f"group:{ADMIN_GROUP_ID}", user_id=user.id, source="system_seed")
        if not user.active:
            users.set_user_active(con, user.id, True)
            audit.record(con, "user.activate", f"user:{user.id}", via="AGNES_SEED_ADMIN_EMAIL")
    return user


def set_user_active(user_id: str, active: bool, *, actor_id: str) -> User:
    """Activate or deactivate a user. 409 for deactivating yourself or the last active admin."""
    with state_store().write() as con:
        user = users.get_user(con, user_id)
        if user is None:
            raise NotFound("user_not_found", "No such user.")
        if not active and user.active:
            if user_id == actor_id:
                raise Conflict("cannot_deactivate_self", "You cannot deactivate your own account.")
            if groups.is_member(con, user_id, ADMIN_GROUP_ID) and groups.count_active_admins(con) <= 1:
                raise Conflict("last_admin", "This is the last active administrator; make someone else an admin first.")
        users.set_user_active(con, user_id, active)
        if not active:
            web_sessions.revoke_user_sessions(con, user_id)
            signals.credentials_changed.send(None, con=con, user_id=user_id)
        audit.record(con, "user.activate" if active else "user.deactivate", f"user:{user_id}", email=user.email)
        updated = users.get_user(con, user_id)
    assert updated is not None
    return updated


@dataclass(frozen=True)
class UserRow:
    """A user with the names of their groups (the users list)."""

    user: User
    groups: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**self.user.to_dict(), "groups": self.groups}


def list_users(query: str = "", *, limit: int = 500) -> list[UserRow]:
    """Users ordered by email, ``query`` matching email or name, with their group names (one unit)."""
    with state_store().read() as con:
        found = users.list_users(con, query=query, limit=limit)
        names = groups.group_names_by_user(con, [u.id for u in found])
    return [UserRow(u, names.get(u.id, [])) for u in found]


def user_groups(user_id: str) -> list[Group]:
    """The groups a user is in, Everyone included."""
    with state_store().read() as con:
        return groups.list_user_groups(con, user_id)


def effective_access(user_id: str) -> list[dict[str, object]]:
    """Resources granted to any of the user's groups: ``[{resource_type, resource_id, via_groups}]``."""
    with state_store().read() as con:
        return grants.effective_access(con, groups.list_user_group_ids(con, user_id))


def resolve_user(ref: str) -> User:
    """A user by id or email (404 ``user_not_found``)."""
    with state_store().read() as con:
        user = users.get_user(con, ref) or users.get_user_by_email(con, ref)
    if user is None:
        raise NotFound("user_not_found", f"No user '{ref}'.")
    return user


# -- groups ------------------------------------------------------------------------------


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


def group_detail(group_id: str) -> GroupDetail:
    """Raises NotFound (``group_not_found``)."""
    with state_store().read() as con:
        group = groups.get_group(con, group_id)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        return GroupDetail(group, groups.list_members(con, group_id), grants.list_grants(con, group_id=group_id))


def get_group(group_id: str) -> Group:
    with state_store().read() as con:
        group = groups.get_group(con, group_id)
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
        audit.record(con, "group.create", f"group:{group.id}", name=group.name, description=group.description)
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
                if group.is_system:
                    raise Conflict("system_group", "System groups cannot be renamed.", field="name")
                other = groups.get_group_by_name(con, name)
                if other and other.id != group_id:
                    raise Conflict("group_exists", f"A group named '{name}' already exists.", field="name")
            else:
                name = None
        groups.update_group(con, group_id, name=name, description=description)
        audit.record(con, "group.update", f"group:{group_id}", name=name, description=description)
        updated = groups.get_group(con, group_id)
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
        audit.record(con, "group.delete", f"group:{group_id}", name=group.name)
    return group


def list_members(group_id: str) -> list[groups.Member]:
    with state_store().read() as con:
        if groups.get_group(con, group_id) is None:
            raise NotFound("group_not_found", "No such group.")
        return groups.list_members(con, group_id)


def add_member(group_id: str, email: str, *, actor_id: str | None) -> User:
    """Add an existing user (by email) to a group as an admin-managed member.

    Raises NotFound (group, user), Invalid (bad email), Conflict (Everyone, already a member).
    """
    email = validate_email(email)
    with state_store().write() as con:
        group = groups.get_group(con, group_id)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        if group_id == EVERYONE_GROUP_ID:
            raise Conflict("implicit_group", "Everyone already includes every user.")
        user = users.get_user_by_email(con, email)
        if user is None:
            raise NotFound("user_not_found", f"No user with email {email}; add the user first.")
        if groups.is_member(con, user.id, group_id):
            raise Conflict("already_member", f"{email} is already a member of {group.name}.", field="email")
        groups.add_member(con, group_id, user.id, source=MembershipSource.ADMIN, added_by=actor_id)
        signals.membership_changed.send(None, con=con, user_id=user.id, group_id=group_id)
        audit.record(con, "group.member_add", f"group:{group_id}", user_id=user.id, email=user.email)
    return user


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
        audit.record(con, "group.member_remove", f"group:{group_id}", user_id=user_id, email=user.email)


# -- grants ------------------------------------------------------------------------------


def list_grants(*, resource_type: str | None = None, group_id: str | None = None) -> list[Grant]:
    if resource_type:
        parse_resource_type(resource_type)
    with state_store().read() as con:
        return grants.list_grants(con, resource_type=resource_type, group_id=group_id)


def create_grant(group_ref: str, resource_type: str, resource_id: str, *, actor_id: str | None) -> Grant:
    """Grant a resource to a group. Raises Invalid, NotFound (group), Conflict (exists)."""
    rtype = parse_resource_type(resource_type)
    resource_id = validate_resource_id(rtype, resource_id)
    with state_store().write() as con:
        group = groups.get_group(con, group_ref) or groups.get_group_by_name(con, group_ref)
        if group is None:
            raise NotFound("group_not_found", f"No group '{group_ref}'.")
        if grants.find_grant(con, group.id, rtype, resource_id):
            raise Conflict("grant_exists", f"{group.name} already has {rtype.value} '{resource_id}'.")
        try:
            grant = grants.create_grant(con, group.id, rtype, resource_id, assigned_by=actor_id)
        except duckdb.ConstraintException:
            raise Conflict("grant_exists", f"{group.name} already has {rtype.value} '{resource_id}'.") from None
        signals.grant_created.send(None, con=con, group_id=group.id, resource_type=rtype, resource_id=resource_id)
        audit.record(
            con, "grant.create", f"grant:{grant.id}", group_id=group.id, resource_type=rtype, resource_id=resource_id
        )
    return grant


def delete_grant(grant_id: str) -> Grant:
    with state_store().write() as con:
        grant = grants.get_grant(con, grant_id)
        if grant is None:
            raise NotFound("grant_not_found", "No such grant.")
        grants.delete_grant(con, grant_id)
        signals.grant_revoked.send(
            None,
            con=con,
            group_id=grant.group_id,
            resource_type=ResourceType(grant.resource_type),
            resource_id=grant.resource_id,
        )
        audit.record(
            con,
            "grant.delete",
            f"grant:{grant_id}",
            group_id=grant.group_id,
            resource_type=grant.resource_type,
            resource_id=grant.resource_id,
        )
    return grant

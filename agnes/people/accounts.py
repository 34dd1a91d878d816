"""Users: creating them (with the ``user_created`` receivers), names, (de)activation, tokens, lists."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from agnes import audit, signals
from agnes.errors import Conflict, Invalid, NotFound
from agnes.models import grants, groups, tokens, users, web_sessions
from agnes.models.groups import ADMIN_GROUP_ID, Group, MembershipSource
from agnes.models.users import User
from agnes.state import state_store

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
# Longest display name accepted (characters).
NAME_MAX = 120
# Users per page of the users list.
USERS_PER_PAGE = 50


def user_or_404(con: Any, user_id: str) -> User:
    """The user with ``user_id`` in an open unit. Raises NotFound (``user_not_found``)."""
    user = users.get_user(con, user_id)
    if user is None:
        raise NotFound("user_not_found", "No such user.")
    return user


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
            audit.record(
                con,
                "group.member_add",
                f"group:{ADMIN_GROUP_ID}",
                params_before={},
                user_id=user.id,
                email=user.email,
                source="system_seed",
            )
        if not user.active:
            users.set_user_active(con, user.id, True)
            audit.record(con, "user.activate", f"user:{user.id}", via="AGNES_SEED_ADMIN_EMAIL")
    return user


def set_user_active(user_id: str, active: bool, *, actor_id: str) -> User:
    """Activate or deactivate a user. 409 for deactivating yourself or the last active admin."""
    with state_store().write() as con:
        user = user_or_404(con, user_id)
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


def update_user(user_id: str, *, name: object) -> User:
    """Change a user's display name. Raises NotFound, Invalid (``invalid_name``, ``name_too_long``)."""
    if not isinstance(name, str):
        raise Invalid("invalid_name", "The name must be text.", field="name")
    name = name.strip()
    if len(name) > NAME_MAX:
        raise Invalid("name_too_long", f"The name must be at most {NAME_MAX} characters.", field="name")
    with state_store().write() as con:
        user = user_or_404(con, user_id)
        users.update_user_name(con, user_id, name)
        audit.record(con, "user.update", f"user:{user_id}", name=name, previous=user.name)
        updated = users.get_user(con, user_id)
    assert updated is not None
    return updated


def revoke_all_tokens(user_id: str) -> int:
    """Revoke every active token of a user (one unit); returns how many were revoked. Raises NotFound."""
    with state_store().write() as con:
        user = user_or_404(con, user_id)
        revoked = tokens.revoke_user_tokens(con, user_id)
        signals.credentials_changed.send(None, con=con, user_id=user_id)
        audit.record(
            con,
            "token.admin_revoke_all",
            f"user:{user_id}",
            params_before={"active_tokens": revoked},
            email=user.email,
            revoked=revoked,
            active_tokens=0,
        )
    return revoked


@dataclass(frozen=True)
class UserRow:
    """A user with the names of their groups (the users list)."""

    user: User
    groups: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {**self.user.to_dict(), "groups": self.groups}


@dataclass(frozen=True)
class UsersPage:
    """One page of the users list: ``rows``, the ``total`` that match, the page number (from 1)."""

    rows: list[UserRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": [r.to_dict() for r in self.rows],
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
        }


def list_users(
    query: str = "",
    *,
    status: str = "",
    group_id: str = "",
    method: str = "",
    sort: str = "email",
    page: int = 1,
    per_page: int = USERS_PER_PAGE,
) -> UsersPage:
    """A page of users (filters and sort: :func:`agnes.models.users.list_users`) with their group
    names, set-based in one read unit (three statements whatever the page size)."""
    page = max(1, page)
    with state_store().read() as con:
        found, total = users.list_users(
            con,
            query=query,
            status=status,
            group_id=group_id,
            method=method,
            sort=sort,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
        names = groups.group_names_by_user(con, [u.id for u in found])
    return UsersPage([UserRow(u, names.get(u.id, [])) for u in found], total, page, per_page)


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

"""Page data of ``/admin/users`` (twin ``/api/admin/users``) and ``/admin/users/<id>`` (twin
``/api/admin/users/<id>``).

The user page is a list of sections (:data:`USER_SECTIONS`), each a template under
``admin/users/`` and a data function of the user, so another area adds a section (telemetry's
sessions, say) with :func:`register_user_section` without touching the page template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agnes import people
from agnes.access import RESOURCE_TYPES, AuthMethod, Principal
from agnes.auth.pat import list_pats
from agnes.explain import Explanation, explain
from agnes.marketplace import resolver, stack
from agnes.models import audit as audit_model
from agnes.models import groups, json_value
from agnes.models.users import SORTS, STATUSES, User
from agnes.state import state_store

# Sign-in methods the users list filters on (``never``: users who never signed in).
METHODS = ("email_link", "google", "never")
# Largest page the users list answers (``per_page``; the page shows 50).
MAX_PER_PAGE = 500
# Audit rows shown on a user's page.
AUDIT_ROWS = 20


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return json_value(value)


# -- the users list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsersFilters:
    q: str = ""
    status: str = ""
    group: str = ""
    method: str = ""
    sort: str = "email"
    page: int = 1
    per_page: int = people.USERS_PER_PAGE

    @classmethod
    def from_args(cls, args: Any) -> UsersFilters:
        """From query arguments; unknown values fall back to "any" (a list never 400s on a bookmark)."""
        status = args.get("status", "")
        method = args.get("method", "")
        sort = args.get("sort", "email")
        try:
            page = max(1, int(args.get("page", 1)))
        except (TypeError, ValueError):
            page = 1
        try:
            per_page = min(MAX_PER_PAGE, max(1, int(args.get("per_page", people.USERS_PER_PAGE))))
        except (TypeError, ValueError):
            per_page = people.USERS_PER_PAGE
        return cls(
            q=str(args.get("q", "")),
            status=status if status in STATUSES else "",
            group=str(args.get("group", "")),
            method=method if method in METHODS else "",
            sort=sort if sort in SORTS else "email",
            page=page,
            per_page=per_page,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments for a link (empty values left out)."""
        values = {**self.__dict__, **changes}
        defaults = {"page": 1, "per_page": people.USERS_PER_PAGE, "sort": "email"}
        return {k: v for k, v in values.items() if v not in ("", None) and defaults.get(k) != v}


@dataclass(frozen=True)
class UsersListPage:
    filters: UsersFilters
    result: people.UsersPage
    groups: dict[str, str]  # id -> name, for the group filter

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "filters": self.filters.__dict__}


def users_list_page(filters: UsersFilters) -> UsersListPage:
    result = people.list_users(
        filters.q,
        status=filters.status,
        group_id=filters.group,
        method=filters.method,
        sort=filters.sort,
        page=filters.page,
        per_page=filters.per_page,
    )
    return UsersListPage(filters, result, people.group_names())


# -- one user --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSection:
    """One section of the user page: ``template`` renders ``data(user)`` as ``section_data``."""

    id: str
    title: str
    template: str
    data: Callable[[User], Any]


def _principal(user: User) -> Principal:
    with state_store().read() as con:
        group_ids = groups.list_user_group_ids(con, user.id)
    return Principal(user=user, group_ids=tuple(group_ids), method=AuthMethod.SESSION)


def profile_data(user: User) -> dict[str, Any]:
    return {"user": user, "methods": list(user.sign_in_methods)}


def groups_data(user: User) -> dict[str, Any]:
    mine = people.memberships(user.id)
    member_of = {m.group_id for m in mine}
    addable = [(gid, name) for gid, name in people.group_names().items() if gid not in member_of and gid != "everyone"]
    return {"memberships": mine, "addable": addable}


def tokens_data(user: User) -> dict[str, Any]:
    found = list_pats(user.id)
    return {"tokens": found, "active": sum(1 for t in found if t.status == "active")}


def access_data(user: User) -> dict[str, Any]:
    return {
        "access": people.effective_access(user.id),
        "resource_types": [{"key": t.value, "name": s.display_name} for t, s in RESOURCE_TYPES.items()],
    }


def stack_data(user: User) -> dict[str, Any]:
    """Their stack (granted plugins, subscribed or not) and what ``/marketplace/info`` serves them."""
    principal = _principal(user)
    served = resolver.resolve(user.id, principal.group_ids)
    return {
        "stack": stack.my_stack(principal),
        "served": [p.info() for p in served.plugins] if user.active else [],
        "etag": served.etag if user.active else None,
    }


def audit_data(user: User) -> dict[str, Any]:
    with state_store().read() as con:
        return {"rows": audit_model.list_user_audit(con, user.id, limit=AUDIT_ROWS)}


def status_data(user: User) -> dict[str, Any]:
    return {"user": user}


USER_SECTIONS: list[UserSection] = [
    UserSection("profile", "Profile", "admin/users/_profile.html", profile_data),
    UserSection("groups", "Groups", "admin/users/_groups.html", groups_data),
    UserSection("tokens", "Access tokens", "admin/users/_tokens.html", tokens_data),
    UserSection("access", "Effective access", "admin/users/_access.html", access_data),
    UserSection("stack", "Marketplace stack", "admin/users/_stack.html", stack_data),
    UserSection("audit", "Recent activity", "admin/users/_audit.html", audit_data),
    UserSection("status", "Account", "admin/users/_status.html", status_data),
]


def register_user_section(section: UserSection, *, before: str | None = None) -> None:
    """Add a section to the user page (before the section ``before``, else before "Account")."""
    if any(s.id == section.id for s in USER_SECTIONS):
        return
    anchor = before or "status"
    index = next((i for i, s in enumerate(USER_SECTIONS) if s.id == anchor), len(USER_SECTIONS))
    USER_SECTIONS.insert(index, section)


@dataclass(frozen=True)
class UserPage:
    user: User
    sections: list[tuple[UserSection, Any]]

    def section(self, section_id: str) -> Any:
        return next(data for s, data in self.sections if s.id == section_id)

    def to_dict(self) -> dict[str, Any]:
        return {**self.user.to_dict(), "sections": {s.id: _jsonable(data) for s, data in self.sections}}


def user_page(user_ref: str, *, only: str | None = None) -> UserPage:
    """The user (id or email) and every section's data (or just section ``only``). Raises NotFound."""
    user = people.resolve_user(user_ref)
    chosen = [s for s in USER_SECTIONS if only is None or s.id == only]
    return UserPage(user, [(s, s.data(user)) for s in chosen])


def explain_for(user_ref: str, resource_type: str, resource_id: str) -> Explanation:
    """Why the user can or cannot reach a resource (:func:`agnes.explain.explain`)."""
    return explain(user_ref, resource_type, resource_id)

"""Who the caller is and what they may do: principals, resource types and decorators.

Authorization rules (DESIGN.md, "Access control"):

* members of the ``Admin`` group pass every app-level check (``admin_required`` and
  ``resource_access_required``), but the served marketplace gives admins no shortcut;
* everyone else reaches a resource through a grant to any group they belong to.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from duckdb import DuckDBPyConnection
from flask import g, redirect, request, url_for

from agnes.errors import AppError, Forbidden
from agnes.models.groups import ADMIN_GROUP_ID
from agnes.models.users import User

F = TypeVar("F", bound=Callable[..., Any])


class AuthMethod(StrEnum):
    SESSION = "session"
    PAT = "pat"


@dataclass(frozen=True)
class Principal:
    """The signed-in caller of one request."""

    user: User
    group_ids: tuple[str, ...]
    method: AuthMethod
    token_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP_ID in self.group_ids

    @property
    def client_kind(self) -> str:
        """``cli`` for token-authenticated calls, ``web`` for browser sessions (audit)."""
        return "cli" if self.method is AuthMethod.PAT else "web"


def current_principal() -> Principal | None:
    return g.get("principal")


def require_principal() -> Principal:
    principal = current_principal()
    if principal is None:
        raise AppError(401, "authentication_required", "Sign in or send an access token.")
    return principal


# -- resource types ----------------------------------------------------------------------


class ResourceType(StrEnum):
    """Kinds of things a group can be granted. Add a member here plus a spec below."""

    MARKETPLACE_PLUGIN = "marketplace_plugin"
    TABLE = "table"


@dataclass(frozen=True)
class ResourceItem:
    """One grantable thing, for pickers and the access tree."""

    id: str
    label: str
    group: str = ""  # e.g. the marketplace a plugin belongs to


@dataclass(frozen=True)
class ResourceTypeSpec:
    """How a resource type looks and which items exist.

    Attributes:
        display_name: shown in admin pages.
        description: one line.
        id_format: human description of a resource id (``<slug>/<plugin>``).
        id_pattern: regex a resource id must fully match.
        list_items: lists the grantable items, given a state-store cursor.
    """

    display_name: str
    description: str
    id_format: str
    id_pattern: str
    list_items: Callable[[DuckDBPyConnection], list[ResourceItem]] = field(default=lambda con: [])


RESOURCE_TYPES: dict[ResourceType, ResourceTypeSpec] = {
    ResourceType.MARKETPLACE_PLUGIN: ResourceTypeSpec(
        display_name="Marketplace plugin",
        description="A plugin of a curated marketplace; a grant makes it available to subscribe to.",
        id_format="<marketplace-slug>/<plugin-name>",
        id_pattern=r"[a-z0-9][a-z0-9_-]{0,63}/[^/\s]{1,200}",
    ),
    ResourceType.TABLE: ResourceTypeSpec(
        display_name="Data table",
        description="A registered table; a grant lets members download it with agnes pull.",
        id_format="<table-id>",
        id_pattern=r"[a-z0-9][a-z0-9_.-]{0,127}",
    ),
}


def register_resource_items(resource_type: ResourceType, list_items: Callable[..., list[ResourceItem]]) -> None:
    """Attach the item lister of a resource type (called by the owning domain at app start)."""
    spec = RESOURCE_TYPES[resource_type]
    RESOURCE_TYPES[resource_type] = ResourceTypeSpec(
        spec.display_name, spec.description, spec.id_format, spec.id_pattern, list_items
    )


def parse_resource_type(value: str) -> ResourceType:
    """Raises AppError(400) naming the field when ``value`` is not a known type."""
    try:
        return ResourceType(value)
    except ValueError:
        known = ", ".join(t.value for t in ResourceType)
        raise AppError(
            400,
            "unknown_resource_type",
            f"Unknown resource type '{value}'. Known: {known}.",
            field="resource_type",
        ) from None


def validate_resource_id(resource_type: ResourceType, resource_id: str) -> str:
    resource_id = (resource_id or "").strip()
    spec = RESOURCE_TYPES[resource_type]
    if not resource_id:
        raise AppError(400, "resource_id_required", "resource_id is required.", field="resource_id")
    if not re.fullmatch(spec.id_pattern, resource_id):
        raise AppError(
            400,
            "invalid_resource_id",
            f"'{resource_id}' is not a valid {spec.display_name.lower()} id; expected {spec.id_format}.",
            field="resource_id",
        )
    return resource_id


# -- decorators --------------------------------------------------------------------------


def _is_api_request() -> bool:
    return request.path.startswith("/api/") or request.blueprint == "api"


def _unauthenticated() -> Any:
    if _is_api_request():
        raise AppError(401, "authentication_required", "Sign in or send an access token.")
    if request.method not in ("GET", "HEAD"):
        # After sign-in the browser would GET a POST-only address; send it back where it was.
        from agnes.auth import safe_next_path

        referrer = request.referrer or ""
        host = request.host_url
        target = safe_next_path("/" + referrer[len(host) :] if referrer.startswith(host) else None)
        return redirect(url_for("auth.login", next=target), code=303)
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def login_required(view: F) -> F:
    """Anonymous callers: HTML pages redirect to /login?next=…, /api answers JSON 401."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_principal() is None:
            return _unauthenticated()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def admin_required(view: F) -> F:
    """Members of the Admin group only (403 for other signed-in users)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        principal = current_principal()
        if principal is None:
            return _unauthenticated()
        if not principal.is_admin:
            raise Forbidden("admin_required", "This needs an Agnes administrator.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def session_required(view: F) -> F:
    """Browser sessions only: a personal access token cannot do this (e.g. mint a token)."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        principal = current_principal()
        if principal is None:
            return _unauthenticated()
        if principal.method is AuthMethod.PAT:
            raise Forbidden("session_required", "An access token cannot do this; sign in with a browser.")
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def can_access(principal: Principal, resource_type: ResourceType, resource_id: str) -> bool:
    """Admins pass; others need a grant to one of their groups."""
    if principal.is_admin:
        return True
    from agnes.models import grants
    from agnes.state import state_store

    with state_store().read() as con:
        return grants.has_grant(con, list(principal.group_ids), resource_type, resource_id)


def resource_access_required(resource_type: ResourceType, view_arg: str) -> Callable[[F], F]:
    """Require a grant on the resource named by the view argument ``view_arg`` (403 otherwise)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                return _unauthenticated()
            resource_id = str(kwargs.get(view_arg, ""))
            if not can_access(principal, resource_type, resource_id):
                raise Forbidden("access_denied", f"You have no access to {resource_type.value} '{resource_id}'.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator

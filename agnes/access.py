"""Who the caller is and what they may do: principals, resource types and decorators.

This module is the one place that decides access to a resource (DESIGN.md, "Access control"):

* a resource type is a :class:`ResourceType` member plus a :class:`ResourceTypeSpec`, registered
  by the area that owns the type (:func:`register_resource_type`): how its items are listed for
  the access tree, and the check that says whether a caller's groups are granted one item;
* :func:`is_granted` runs that check; :func:`can_access` adds the ``Admin`` group's pass (members
  of ``Admin`` pass every app-level check); :func:`resource_access_required` guards a view with
  it. Pages, JSON twins and downloads all go through these. The served marketplace gives admins
  no shortcut, so it asks :func:`is_granted`-equivalent rules in SQL (see
  :mod:`agnes.models.served`), never :func:`can_access`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

from duckdb import DuckDBPyConnection
from flask import g, redirect, request, url_for

from agnes.errors import AppError, Forbidden, NotFound
from agnes.models.grants import granted_group_ids
from agnes.models.groups import ADMIN_GROUP_ID
from agnes.models.users import User
from agnes.urls import safe_next_path

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


# -- resource types ----------------------------------------------------------------------


class ResourceType(StrEnum):
    """Kinds of things a group can be granted. Add a member here plus a spec below."""

    MARKETPLACE_PLUGIN = "marketplace_plugin"
    TABLE = "table"
    FLEA_ENTITY = "flea_entity"


@dataclass(frozen=True)
class ResourceItem:
    """One grantable thing, for pickers and the access tree.

    ``locked``: every group has it and its grants cannot be revoked (a system plugin).
    """

    id: str
    label: str
    group: str = ""  # e.g. the marketplace a plugin belongs to
    locked: bool = False


@dataclass(frozen=True)
class ItemFacts:
    """What one item means for one user, for "explain" (see :mod:`agnes.explain`).

    Attributes:
        exists: the item is registered.
        label: how people call it (``orders``, ``sql-helper``).
        served: whether it actually reaches the user (a plugin in their served marketplace, a
            table in their ``agnes pull`` manifest); None when the type has no such notion.
        notes: type-specific sentences (subscribed or not, system, unavailable, not synced yet).
    """

    exists: bool
    label: str
    served: bool | None = None
    notes: tuple[str, ...] = ()


def _nothing_listed(con: DuckDBPyConnection) -> list[ResourceItem]:
    return []


def _never_granted(principal: Principal, resource_id: str) -> bool:
    return False


def _granted_rows(con: DuckDBPyConnection, resource_type: str, resource_id: str) -> set[str]:
    return granted_group_ids(con, resource_type, resource_id)


def _plain_facts(principal: Principal, resource_id: str) -> ItemFacts:
    return ItemFacts(exists=True, label=resource_id)


def _find_listed(spec: ResourceTypeSpec, con: DuckDBPyConnection, resource_id: str) -> ResourceItem | None:
    return next((i for i in spec.list_items(con) if i.id == resource_id), None)


@dataclass(frozen=True)
class ResourceTypeSpec:
    """How a resource type looks, which items exist and who may reach one.

    Attributes:
        display_name: shown in admin pages.
        description: one line.
        id_format: human description of a resource id (``<slug>/<plugin>``).
        id_pattern: regex a resource id must fully match (anything else cannot exist: 404).
        not_found_code: the error code of a 404 for this type (``plugin_not_found``).
        list_items: lists the grantable items, given a state-store cursor.
        is_granted: ``(principal, resource_id) -> bool``: one of the caller's groups is granted
            the item. No admin shortcut; :func:`can_access` adds it.
        exists: ``(principal, resource_id) -> bool`` or None. With it, a refused caller learns
            whether the item exists (404 vs 403); without it every refusal is a 403, so ids
            cannot be probed.
        granted_groups: ``(cursor, type, resource_id) -> group ids`` whose members pass
            ``is_granted`` ("who can see this"); the grant rows unless the type adds more.
        facts: ``(principal, resource_id) -> ItemFacts`` for explanations.
        get_item: ``(cursor, resource_id) -> ResourceItem | None``, one item without listing all.
        verb: what a grant lets members do, in a sentence ("download", "install").
    """

    display_name: str
    description: str
    id_format: str
    id_pattern: str
    not_found_code: str
    verb: str = "reach"
    list_items: Callable[[DuckDBPyConnection], list[ResourceItem]] = _nothing_listed
    is_granted: Callable[[Principal, str], bool] = _never_granted
    exists: Callable[[Principal, str], bool] | None = None
    granted_groups: Callable[[DuckDBPyConnection, str, str], set[str]] = _granted_rows
    facts: Callable[[Principal, str], ItemFacts] = _plain_facts
    get_item: Callable[[DuckDBPyConnection, str], ResourceItem | None] | None = None

    def item(self, con: DuckDBPyConnection, resource_id: str) -> ResourceItem | None:
        """One grantable item (None when it does not exist)."""
        if self.get_item is not None:
            return self.get_item(con, resource_id)
        return _find_listed(self, con, resource_id)


RESOURCE_TYPES: dict[ResourceType, ResourceTypeSpec] = {
    ResourceType.MARKETPLACE_PLUGIN: ResourceTypeSpec(
        display_name="Marketplace plugin",
        description="A plugin of a curated marketplace; a grant makes it available to subscribe to.",
        id_format="<marketplace-slug>/<plugin-name>",
        id_pattern=r"[a-z0-9][a-z0-9_-]{0,63}/[^/\s]{1,200}",
        not_found_code="plugin_not_found",
        verb="install",
    ),
    ResourceType.TABLE: ResourceTypeSpec(
        display_name="Data table",
        description="A registered table; a grant lets members download it with agnes pull.",
        id_format="<table-id>",
        id_pattern=r"[a-z0-9][a-z0-9_.-]{0,127}",
        not_found_code="table_not_found",
        verb="download",
    ),
    ResourceType.FLEA_ENTITY: ResourceTypeSpec(
        display_name="Flea-market entry",
        description="A skill or plugin an analyst published; its owner, admins and (once approved) everyone see it.",
        id_format="<entity-id>",
        id_pattern=r"[0-9a-f]{16}",
        not_found_code="entity_not_found",
        verb="install",
    ),
}


def register_resource_type(
    resource_type: ResourceType,
    *,
    list_items: Callable[[DuckDBPyConnection], list[ResourceItem]],
    is_granted: Callable[[Principal, str], bool],
    exists: Callable[[Principal, str], bool] | None = None,
    granted_groups: Callable[[DuckDBPyConnection, str, str], set[str]] | None = None,
    facts: Callable[[Principal, str], ItemFacts] | None = None,
    get_item: Callable[[DuckDBPyConnection, str], ResourceItem | None] | None = None,
) -> None:
    """Attach the item lister, the access check and the explanation hooks of a type (the owning
    area, at app start)."""
    spec = RESOURCE_TYPES[resource_type]
    RESOURCE_TYPES[resource_type] = replace(
        spec,
        list_items=list_items,
        is_granted=is_granted,
        exists=exists,
        granted_groups=granted_groups or spec.granted_groups,
        facts=facts or spec.facts,
        get_item=get_item or spec.get_item,
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


# -- the access decision -----------------------------------------------------------------


def is_granted(principal: Principal, resource_type: ResourceType, resource_id: str) -> bool:
    """One of the caller's groups is granted the resource (the type's own check; no admin pass)."""
    return RESOURCE_TYPES[resource_type].is_granted(principal, resource_id)


def can_access(principal: Principal, resource_type: ResourceType, resource_id: str) -> bool:
    """Admins pass; everyone else needs a grant to one of their groups (:func:`is_granted`)."""
    return principal.is_admin or is_granted(principal, resource_type, resource_id)


def require_access(principal: Principal, resource_type: ResourceType, resource_id: str) -> None:
    """Raise unless :func:`can_access` allows it.

    Raises:
        NotFound: the id cannot exist (fails the type's pattern), or the type knows that the item
            does not exist (``exists``); the code is the type's ``not_found_code``.
        Forbidden: ``access_denied``.
    """
    spec = RESOURCE_TYPES[resource_type]
    if not re.fullmatch(spec.id_pattern, resource_id):
        raise NotFound(spec.not_found_code, f"There is no {spec.display_name.lower()} '{resource_id}'.")
    if can_access(principal, resource_type, resource_id):
        return
    if spec.exists is not None and not spec.exists(principal, resource_id):
        raise NotFound(spec.not_found_code, f"There is no {spec.display_name.lower()} '{resource_id}'.")
    raise Forbidden(
        "access_denied",
        f"None of your groups is granted the {spec.display_name.lower()} '{resource_id}'; ask an administrator.",
    )


# -- decorators --------------------------------------------------------------------------


def _is_api_request() -> bool:
    return request.path.startswith("/api/") or request.blueprint == "api"


def _unauthenticated() -> Any:
    if _is_api_request():
        raise AppError(401, "authentication_required", "Sign in or send an access token.")
    if request.method not in ("GET", "HEAD"):
        # After sign-in the browser would GET a POST-only address; send it back where it was.
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


def resource_access_required(resource_type: ResourceType, resource_id: str | Callable[..., str]) -> Callable[[F], F]:
    """Guard a view with :func:`require_access` (404 or 403, see there).

    Args:
        resource_type: the type of the resource the view shows.
        resource_id: the view argument holding the id (``"table_id"``), or a function of the
            view's arguments returning it (``lambda slug, plugin, **_: f"{slug}/{plugin}"``).
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                return _unauthenticated()
            if callable(resource_id):
                target = resource_id(**kwargs)
            else:
                target = str(kwargs.get(resource_id, ""))
            require_access(principal, resource_type, target)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator

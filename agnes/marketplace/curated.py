"""Curated marketplaces: registering, editing and removing them, and their tokens (system plugins:
:mod:`agnes.marketplace.system`).

Each function is one short unit of work and raises :class:`agnes.errors.AppError`
subclasses with the message a client sees, so the admin pages, the JSON API and the CLI
enforce the same rules. Tokens go to the secrets overlay (:mod:`agnes.marketplace.overlay`),
never into the database, logs, errors or pages.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
from flask import current_app

from agnes import audit, markers
from agnes.errors import Conflict, Invalid, NotFound, Unprocessable, validate_fields
from agnes.marketplace import overlay
from agnes.marketplace.gitfetch import local_repository_problem
from agnes.models import marketplaces
from agnes.models.marketplace_history import SyncRecord, list_sync_history
from agnes.models.marketplaces import Marketplace, Plugin
from agnes.state import state_store

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Slugs with a meaning of their own (the flea market's sentinel, our served marketplace's name).
RESERVED_SLUGS = frozenset({"store", "agnes", "flea"})  # flea: the flea market's served plugins
BRANCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
CURATOR_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
# Longest display name and description (characters).
NAME_MAX = 120
DESCRIPTION_MAX = 2000


# -- validation --------------------------------------------------------------------------------


def _text(value: Any, field: str) -> str:
    """A text field, stripped ('' for None). Raises Invalid for numbers, lists and objects."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"invalid_{field}", f"{field} must be text.", field=field)
    return value.strip()


def validate_slug(value: Any) -> str:
    slug = _text(value, "slug")
    if not slug:
        raise Invalid("slug_required", "A slug is required (e.g. acme-tools).", field="slug")
    if not SLUG_RE.match(slug):
        raise Invalid(
            "invalid_slug",
            "The slug must be 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit.",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise Invalid("reserved_slug", f"'{slug}' is reserved; choose another slug.", field="slug")
    return slug


def validate_url(value: Any) -> str:
    """An ``https://`` git URL, or a local path / ``file://`` URL for an on-premise mirror.

    Refused at registration rather than as a sync failure later: a URL scheme we do not fetch, a
    local path that does not exist or is not a git repository (422 ``unsupported_url_scheme``,
    ``repository_not_found``), credentials in the URL (400).
    """
    url = _text(value, "url")
    if not url:
        raise Invalid("url_required", "The git URL of the marketplace repository is required.", field="url")
    if url.startswith("/"):
        return _local_repository(url.rstrip("/") or "/")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise Invalid("invalid_url", "A file:// URL must name an absolute local path.", field="url")
        return _local_repository(url)
    if parts.scheme != "https" or not parts.hostname:
        scheme = f"{parts.scheme}:// URLs are" if parts.scheme else "This is"
        raise Unprocessable(
            "unsupported_url_scheme",
            f"{scheme} not fetched: use an https:// git URL, or a local path or file:// URL for an on-premise mirror.",
            field="url",
        )
    if parts.username or parts.password:
        raise Invalid(
            "credentials_in_url",
            "Do not put credentials in the URL; enter the access token in the token field.",
            field="url",
        )
    if parts.query or parts.fragment:
        raise Invalid("invalid_url", "The git URL must not have a query or fragment.", field="url")
    for segment in parts.path.split("/"):
        if audit.looks_like_credential(segment.removesuffix(".git")):
            raise Invalid(
                "credentials_in_url",
                "A part of the URL path looks like an access token (a GitHub/GitLab token prefix, or 32 or"
                " more hex or letter-and-digit characters); enter the token in the token field instead.",
                field="url",
            )
    return url


def _local_repository(url: str) -> str:
    problem = local_repository_problem(url)
    if problem:
        raise Unprocessable("repository_not_found", problem, field="url")
    return url


def validate_branch(value: Any) -> str | None:
    branch = _text(value, "branch")
    if not branch:
        return None
    if not BRANCH_RE.match(branch) or ".." in branch or branch.endswith((".lock", "/")):
        raise Invalid("invalid_branch", f"'{branch}' is not a valid branch name.", field="branch")
    return branch


def validate_name(value: Any) -> str:
    name = _text(value, "name")
    if not name:
        raise Invalid("name_required", "A display name is required.", field="name")
    if len(name) > NAME_MAX:
        raise Invalid("name_too_long", f"The name must be at most {NAME_MAX} characters.", field="name")
    return name


def validate_curator_email(value: Any) -> str:
    email = _text(value, "curator_email")
    if not CURATOR_EMAIL_RE.match(email):
        raise Invalid("invalid_curator_email", f"'{email}' is not a valid email address.", field="curator_email")
    return email


def validate_token(value: Any) -> str:
    token = _text(value, "token")
    if token and not overlay.valid_token(token):
        raise Invalid("invalid_token", "The token must be one line of printable characters.", field="token")
    return token


def _description(value: Any) -> str:
    text = _text(value, "description")
    if len(text) > DESCRIPTION_MAX:
        raise Invalid("description_too_long", f"At most {DESCRIPTION_MAX} characters.", field="description")
    return text


# -- reads ------------------------------------------------------------------------------------


def list_marketplaces() -> list[Marketplace]:
    with state_store().read() as con:
        return marketplaces.list_marketplaces(con)


def get_marketplace(marketplace_id: str) -> Marketplace:
    """Raises NotFound (``marketplace_not_found``)."""
    with state_store().read() as con:
        found = marketplaces.get_marketplace(con, marketplace_id)
    if found is None:
        raise NotFound("marketplace_not_found", f"No marketplace '{marketplace_id}'.")
    return found


def list_plugins(marketplace_id: str) -> list[Plugin]:
    with state_store().read() as con:
        if marketplaces.get_marketplace(con, marketplace_id) is None:
            raise NotFound("marketplace_not_found", f"No marketplace '{marketplace_id}'.")
        return marketplaces.list_plugins(con, marketplace_id)


def sync_history(marketplace_id: str, limit: int = 20) -> list[SyncRecord]:
    with state_store().read() as con:
        return list_sync_history(con, marketplace_id, limit=limit)


@dataclass(frozen=True)
class MarketplaceDetail:
    """A marketplace with its plugins and recent sync history, read in one unit."""

    marketplace: Marketplace
    plugins: list[Plugin]
    history: list[SyncRecord]


def marketplace_detail(marketplace_id: str, *, history: int = 10) -> MarketplaceDetail:
    """Raises NotFound (``marketplace_not_found``)."""
    with state_store().read() as con:
        found = marketplaces.get_marketplace(con, marketplace_id)
        if found is None:
            raise NotFound("marketplace_not_found", f"No marketplace '{marketplace_id}'.")
        return MarketplaceDetail(
            found, marketplaces.list_plugins(con, marketplace_id), list_sync_history(con, marketplace_id, limit=history)
        )


def has_token(marketplace: Marketplace) -> bool:
    """True when a token variable is configured and holds a value."""
    return bool(marketplace.token_env and overlay.read_secret(marketplace.token_env))


# -- writes -----------------------------------------------------------------------------------


def create_marketplace(
    data: dict[str, Any], *, actor_id: str | None, actor_email: str = "", actor_name: str = ""
) -> Marketplace:
    """Register a marketplace. The curator defaults to the registering admin.

    Raises Invalid (per field) or Conflict (``marketplace_exists``).
    """
    checked = validate_fields(
        data,
        {
            "slug": validate_slug,
            "name": validate_name,
            "url": validate_url,
            "branch": validate_branch,
            "token": validate_token,
            "curator_name": lambda v: _text(v, "curator_name") or actor_name or actor_email,
            "curator_email": lambda v: validate_curator_email(_text(v, "curator_email") or actor_email),
            "description": _description,
        },
    )
    slug, name, url, branch, token = (checked[k] for k in ("slug", "name", "url", "branch", "token"))
    curator_name, curator_email, description = (checked[k] for k in ("curator_name", "curator_email", "description"))
    token_env = overlay.token_env_name(slug) if token else None
    with state_store().write() as con:
        if marketplaces.get_marketplace(con, slug):
            raise Conflict("marketplace_exists", f"A marketplace with slug '{slug}' already exists.", field="slug")
        env_name = overlay.token_env_name(slug)
        for other in marketplaces.list_marketplaces(con):
            # 'acme-tools' and 'acme_tools' would share one token variable: rotating, clearing or
            # deleting one would change the other's token (and send it to the other's host).
            if overlay.token_env_name(other.id) == env_name:
                raise Conflict(
                    "slug_conflict",
                    f"'{slug}' is too close to the existing slug '{other.id}' (both store"
                    f" their token as {env_name}); choose another slug.",
                    field="slug",
                )
        try:
            created = marketplaces.create_marketplace(
                con,
                slug=slug,
                name=name,
                url=url,
                branch=branch,
                token_env=token_env,
                description=description,
                curator_name=curator_name,
                curator_email=curator_email,
                registered_by=actor_id,
            )
        except duckdb.ConstraintException:
            raise Conflict(
                "marketplace_exists", f"A marketplace with slug '{slug}' already exists.", field="slug"
            ) from None
        audit.record(
            con,
            "marketplace.create",
            f"marketplace:{slug}",
            params_before={},
            name=name,
            url=url,
            branch=branch,
            description=description,
            curator_name=curator_name,
            curator_email=curator_email,
            token="set" if token else None,
            token_env=token_env,  # the variable's name; its value never reaches the log
        )
        if token_env:
            overlay.write_secret(token_env, token)
    return created


def _registry_fields(market: Marketplace) -> dict[str, Any]:
    """What a removal's audit row keeps of a marketplace (its token as the variable's name)."""
    return {field: getattr(market, field) for field in marketplaces.UPDATABLE}


def update_marketplace(marketplace_id: str, data: dict[str, Any]) -> Marketplace:
    """Partial update: a missing or ``None`` field is left untouched.

    ``token``: ``""`` clears it, any other value rotates it. ``branch: ""`` means the
    remote's default branch. Empty curator fields mean "no change". The slug cannot change.
    """
    if data.get("slug") not in (None, "", marketplace_id):
        raise Invalid("slug_immutable", "The slug cannot change; register a new marketplace instead.", field="slug")
    checks: dict[str, Any] = {
        field: check
        for field, check in (
            ("name", validate_name),
            ("url", validate_url),
            ("branch", validate_branch),
            ("description", _description),
            ("token", validate_token),
        )
        if data.get(field) is not None
    }
    if _text(data.get("curator_name"), "curator_name"):
        checks["curator_name"] = lambda v: _text(v, "curator_name")
    if _text(data.get("curator_email"), "curator_email"):
        checks["curator_email"] = validate_curator_email
    changes = validate_fields(data, checks)  # every refused field at once
    token = changes.pop("token", None)
    with state_store().write() as con:
        current = marketplaces.get_marketplace(con, marketplace_id)
        if current is None:
            raise NotFound("marketplace_not_found", f"No marketplace '{marketplace_id}'.")
        if token is not None:
            changes["token_env"] = overlay.token_env_name(marketplace_id) if token else None
        if changes:
            marketplaces.update_marketplace(con, marketplace_id, changes)
        audit.record(
            con,
            "marketplace.update",
            f"marketplace:{marketplace_id}",
            # Nothing set (an empty edit): not a registry change.
            params_before={field: getattr(current, field) for field in changes} or None,
            **changes,
            token=None if token is None else ("cleared" if not token else "rotated"),
        )
        if token is not None:
            overlay.write_secret(overlay.token_env_name(marketplace_id), token or None)
        updated = marketplaces.get_marketplace(con, marketplace_id)
    assert updated is not None
    return updated


def delete_marketplace(marketplace_id: str, *, purge: bool = False) -> dict[str, int]:
    """Unregister a marketplace with its plugins, grants and subscriptions.

    ``purge`` also deletes its working copy under ``marketplaces/<slug>/``. The token is
    removed from the overlay. Returns the counts of deleted rows. Raises NotFound.
    """
    with state_store().write() as con:
        current = marketplaces.get_marketplace(con, marketplace_id)
        if current is None:
            raise NotFound("marketplace_not_found", f"No marketplace '{marketplace_id}'.")
        counts = marketplaces.delete_marketplace(con, marketplace_id)
        markers.MARKETPLACE.bump()
        audit.record(
            con,
            "marketplace.delete",
            f"marketplace:{marketplace_id}",
            params_before=_registry_fields(current),
            purge=purge,
            **counts,
        )
    overlay.write_secret(overlay.token_env_name(marketplace_id), None)
    if purge:
        shutil.rmtree(working_dir(marketplace_id), ignore_errors=True)
    return counts


def working_dir(slug: str) -> Path:
    """``<data>/marketplaces/<slug>``: the fetched repository and its snapshots."""
    return Path(current_app.config["AGNES_DATA_DIR"]) / "marketplaces" / slug

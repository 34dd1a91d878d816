"""The authorization matrix: every route of the app × every kind of caller.

``RULES`` maps each endpoint in ``app.url_map`` to a :class:`Rule` (who may call it, how to
fill its URL parameters and what body to send). The test iterates the real url_map, so a
route added without a rule fails ``test_every_route_has_a_rule`` with instructions.

Callers: anonymous, analyst and admin with a browser session, analyst and admin with a
personal access token (PAT), and a revoked PAT. Expected outcome classes:

* ``ok``: the authorization layer let the call through (any status that is not 401, 403,
  a redirect to ``/login?next=``, 404 or 5xx; a 400/409/422 validation answer counts as ok);
* ``login``: a redirect to ``/login?next=<the requested path>`` (HTML pages, anonymous; after a POST,
  ``next`` is the referring page or ``/``);
* ``unauthorized``: JSON 401 with an ``error`` code (``/api``, anonymous or bad token);
* ``forbidden``: 403 (JSON under ``/api``).

To add a route: add ``"<endpoint>": Rule(<ACCESS>, values=..., body=...)`` to ``RULES``.
``values``/``body`` are callables ``(world, caller) -> dict`` so destructive routes get a
fresh object per call (``world.new_group()``, ``world.new_token(caller.user_id)``...). If the
default expectation for an access level is wrong for one caller, pass
``expect={"analyst_pat": FORBIDDEN}``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from tests.conftest import session_cookie
from tests.data.conftest import (
    matrix_metric,
    matrix_register_body,
    matrix_register_form,
    matrix_table,
    matrix_update_form,
)
from tests.flea.conftest import matrix_entity
from tests.telemetry.conftest import matrix_session_file, matrix_subagent_file

# -- access levels and outcome classes ---------------------------------------------------

PUBLIC = "public"  # anyone, no sign-in (health probes, sign-in pages, static files)
LOGIN = "login"  # any signed-in user (session or PAT)
SESSION = "session"  # signed in with a browser session; a PAT gets 403 (e.g. minting a PAT)
ADMIN = "admin"  # members of the Admin group; other signed-in users get 403

OK = "ok"
LOGIN_REDIRECT = "login"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"

CALLERS = (
    "anonymous",
    "analyst_session",
    "analyst_pat",
    "admin_session",
    "admin_pat",
    "revoked_pat",
    "expired_pat",
    "deactivated_session",
    "deactivated_pat",
    "signed_out_session",
)
# Callers whose credentials no longer work: an expired or revoked token, a deactivated user's
# cookie or token (both taken before the deactivation), a cookie copied before POST /logout.
NOT_SIGNED_IN = frozenset(
    {"anonymous", "revoked_pat", "expired_pat", "deactivated_session", "deactivated_pat", "signed_out_session"}
)

ADMIN_EMAIL = "admin@example.com"  # the seed admin of the test app
ANALYST_EMAIL = "analyst@example.com"

_counter = itertools.count(1)
# A Claude Code session id for the telemetry routes.
MATRIX_SESSION = "0b6c2f4e-9d1a-4c3b-8e7f-1a2b3c4d5e6f"


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


@dataclass(frozen=True)
class Caller:
    name: str
    user_id: str | None
    token: str | None = None  # a PAT (sent as Bearer) or None
    session: dict[str, Any] | None = None  # cookie session to install (None for PAT callers)
    csrf: str | None = None  # form token matching ``session``

    @property
    def is_admin(self) -> bool:
        return self.name.startswith("admin")

    @property
    def signed_in(self) -> bool:
        return self.name not in NOT_SIGNED_IN

    @property
    def uses_pat(self) -> bool:
        return self.name.endswith("_pat")


Factory = Callable[["World", Caller], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """How one endpoint is protected and how to call it.

    Attributes:
        access: PUBLIC, LOGIN, SESSION or ADMIN.
        values: URL parameters, ``(world, caller) -> {"group_id": ...}``.
        body: form fields (pages) or JSON object (``/api``) for POST/PUT/PATCH/DELETE.
        query: query string parameters for the call.
        expect: per-caller overrides of the expected outcome class.
    """

    access: str
    values: Factory | None = None
    body: Factory | None = None
    query: dict[str, str] = field(default_factory=dict)
    expect: dict[str, str] = field(default_factory=dict)

    def expected(self, caller: Caller, is_api: bool) -> str:
        if caller.name in self.expect:
            return self.expect[caller.name]
        if self.access == PUBLIC:
            return OK
        if not caller.signed_in:
            return UNAUTHORIZED if is_api else LOGIN_REDIRECT
        if self.access == ADMIN and not caller.is_admin:
            return FORBIDDEN
        if self.access == SESSION and caller.uses_pat:
            return FORBIDDEN
        return OK


class World:
    """Real objects to fill URL parameters with, created in the test app's state store."""

    def __init__(self, app: Flask, admin_id: str, analyst_id: str) -> None:
        from agnes import people

        self.app = app
        self.admin_id = admin_id
        self.analyst_id = analyst_id
        self.jobs: dict[str, str] = {}
        self.group_id = self.new_group()
        people.add_member(self.group_id, ANALYST_EMAIL, actor_id=admin_id)

    def new_user(self) -> str:
        from agnes import people

        return people.create_user(f"{unique('user')}@example.com").id

    def new_group(self, *, with_member: bool = True) -> str:
        from agnes import people

        group = people.create_group(unique("Group"), actor_id=self.admin_id)
        if with_member:
            people.add_member(group.id, people.create_user(f"{unique('member')}@example.com").email, actor_id=None)
        return group.id

    def new_member(self) -> tuple[str, str]:
        """A group with one removable member: ``(group_id, user_id)``."""
        from agnes import people

        group_id = self.new_group(with_member=False)
        user = people.create_user(f"{unique('member')}@example.com")
        people.add_member(group_id, user.email, actor_id=self.admin_id)
        return group_id, user.id

    def new_grant(self) -> str:
        from agnes import people

        return people.create_grant(self.group_id, "table", unique("table"), actor_id=self.admin_id).id

    def new_token(self, user_id: str | None) -> str:
        from agnes.auth.pat import create_pat

        record, _ = create_pat(user_id or self.analyst_id, unique("token"), 30)
        return record.id

    def job(self, owner_id: str) -> str:
        """A finished job owned by ``owner_id`` (the recount job, run in-process; one per owner)."""
        if owner_id not in self.jobs:
            from agnes.jobs import enqueue
            from agnes.jobs.groups import run_recompute_group_member_counts

            job = enqueue(run_recompute_group_member_counts, job_id=unique("job:authz"), owner_id=owner_id)
            self.app.extensions["agnes_jobs"].wait_idle()
            self.jobs[owner_id] = job.id
        return self.jobs[owner_id]

    def empty_repository(self) -> str:
        """An empty bare git repository (registration refuses a path that is not one; its sync fails)."""
        if not getattr(self, "_empty_repo", None):
            import subprocess
            import tempfile

            path = tempfile.mkdtemp(prefix="authz-repo-", dir=self.app.config["AGNES_DATA_DIR"])
            subprocess.run(["git", "init", "-q", "--bare", path], check=True, capture_output=True, timeout=60)
            self._empty_repo = path
        return self._empty_repo

    def marketplace(self, *, fresh: bool = False) -> str:
        """A registered marketplace with one plugin, ``tool``, granted to Everyone (no files)."""
        from agnes import people
        from agnes.marketplace import curated
        from agnes.models import marketplaces, utcnow
        from agnes.models.marketplaces import PluginRecord
        from agnes.state import state_store

        if not fresh and getattr(self, "_marketplace", None):
            return self._marketplace
        slug = unique("mp")
        curated.create_marketplace(
            {"slug": slug, "name": slug, "url": "https://git.example.com/authz-mp.git"},
            actor_id=self.admin_id,
            actor_email=ADMIN_EMAIL,
        )
        record = PluginRecord(
            name="tool",
            manifest_name="tool",
            source_kind="path",
            source_spec="./tool",
            raw={"name": "tool", "source": "./tool"},
        )
        with state_store().write() as con:
            marketplaces.apply_sync(
                con, slug, commit_sha="0" * 40, checkout_dir="x", records=[record], started_at=utcnow()
            )
        people.create_grant("everyone", "marketplace_plugin", f"{slug}/tool", actor_id=self.admin_id)
        if not fresh:
            self._marketplace = slug
        return slug

    def new_sign_in_link(self) -> str:
        from agnes.auth.email import _serializer
        from agnes.models import tokens
        from agnes.state import state_store

        with state_store().write() as con:
            nonce = tokens.create_magic_link(con, self.analyst_id)
        return _serializer().dumps({"n": nonce})


def _group(w: World, c: Caller) -> dict[str, Any]:
    return {"group_id": w.group_id}


def _fresh_group(w: World, c: Caller) -> dict[str, Any]:
    return {"group_id": w.new_group()}


def _fresh_member(w: World, c: Caller) -> dict[str, Any]:
    group_id, user_id = w.new_member()
    return {"group_id": group_id, "user_id": user_id}


def _fresh_user(w: World, c: Caller) -> dict[str, Any]:
    return {"user_id": w.new_user()}


def _own_token(w: World, c: Caller) -> dict[str, Any]:
    return {"token_id": w.new_token(c.user_id)}


def _any_token(w: World, c: Caller) -> dict[str, Any]:
    return {"token_id": w.new_token(w.analyst_id)}


def _own_job(w: World, c: Caller) -> dict[str, Any]:
    return {"job_id": w.job(c.user_id or w.admin_id)}


def _feedback_report(w: World, c: Caller) -> dict[str, Any]:
    from agnes import feedback

    return {"report_id": feedback.create_report(w.analyst_id, message=unique("report")).id}


def _flea(w: World, c: Caller) -> dict[str, Any]:
    """An approved flea entry of the analyst (shared: the routes using it leave it usable)."""
    if not getattr(w, "_flea_entity", None):
        w._flea_entity = matrix_entity(w.analyst_id, name="matrix-shared")[0]  # type: ignore[attr-defined]
    return {"entity_id": w._flea_entity}  # type: ignore[attr-defined]


def _fresh_flea(w: World, c: Caller) -> dict[str, Any]:
    return {"entity_id": matrix_entity(w.analyst_id)[0]}


def _flea_version(action: str) -> Factory:
    def values(w: World, c: Caller) -> dict[str, Any]:
        return {"version_id": matrix_entity(w.analyst_id, approved=False)[1], "action": action}

    return values


def _flea_version_id(w: World, c: Caller) -> dict[str, Any]:
    return {"version_id": matrix_entity(w.analyst_id, approved=False)[1]}


def _stored_session(w: World, c: Caller) -> dict[str, Any]:
    return {"user_id": w.analyst_id, "session_id": matrix_session_file(w).removesuffix(".jsonl")}


def _stored_subagent(w: World, c: Caller) -> dict[str, Any]:
    return {**_stored_session(w, c), "name": matrix_subagent_file(w)}


def _new_email(w: World, c: Caller) -> dict[str, Any]:
    return {"email": f"{unique('new')}@example.com", "name": "New Person"}


def _new_group_body(w: World, c: Caller) -> dict[str, Any]:
    return {"name": unique("Created"), "description": "from the authz matrix"}


def _marketplace(w: World, c: Caller) -> dict[str, Any]:
    return {"marketplace_id": w.marketplace()}


def _fresh_marketplace(w: World, c: Caller) -> dict[str, Any]:
    return {"marketplace_id": w.marketplace(fresh=True)}


def _plugin(w: World, c: Caller) -> dict[str, Any]:
    return {"marketplace_id": w.marketplace(), "name": "tool"}


def _curated(w: World, c: Caller) -> dict[str, Any]:
    return {"slug": w.marketplace(), "plugin": "tool"}


def _curated_item(w: World, c: Caller) -> dict[str, Any]:
    """A skill of the world marketplace's plugin ``tool`` (its files written on first use)."""
    from pathlib import Path

    from agnes import markers
    from agnes.state import state_store

    slug = w.marketplace()
    data = Path(w.app.config["AGNES_DATA_DIR"])
    root = data / "authz-plugins" / slug
    if not root.exists():
        (root / "skills" / "hello").mkdir(parents=True)
        (root / "skills" / "hello" / "SKILL.md").write_text("---\nname: hello\n---\nHi.\n")
        with state_store().write() as con:
            con.execute(
                "UPDATE marketplace_plugins SET content_dir = ?, updated_at = current_timestamp"
                " WHERE marketplace_id = ? AND name = 'tool'",
                [str(root.relative_to(data)), slug],
            )
            markers.MARKETPLACE.bump()  # as every writer does, so cached plugin rows are re-read
    return {"slug": slug, "plugin": "tool", "kind": "skill", "item": "hello"}


def _fresh_user_ref(w: World, c: Caller) -> dict[str, Any]:
    return {"user_ref": w.new_user()}


def _plugin_ref(w: World) -> dict[str, Any]:
    return {"resource_type": "marketplace_plugin", "resource_id": f"{w.marketplace()}/tool"}


def _bulk(w: World) -> dict[str, Any]:
    """A block of the access page: the world marketplace's plugins (named by the marketplace)."""
    return {"resource_type": "marketplace_plugin", "block": w.marketplace(), "action": "grant"}


def _new_marketplace_body(w: World, c: Caller) -> dict[str, Any]:
    return {"slug": unique("new-mp"), "name": "New", "url": w.empty_repository()}


# Served-marketplace downloads answer 401 (not a sign-in redirect): their clients are CLIs.
_SERVED = {name: UNAUTHORIZED for name in NOT_SIGNED_IN}


# Endpoint → rule. Keep sorted by URL prefix; every endpoint of the app must be here.
RULES: dict[str, Rule] = {
    # public: probes, static files, sign-in
    "health.healthz": Rule(PUBLIC),
    "health.readyz": Rule(PUBLIC),
    "static": Rule(PUBLIC, values=lambda w, c: {"filename": "app.css"}),
    "auth.login": Rule(PUBLIC),
    "auth.login_post": Rule(PUBLIC, body=lambda w, c: {"email": ANALYST_EMAIL}),
    "auth.link_sent": Rule(PUBLIC),
    "auth.verify_link": Rule(PUBLIC, values=lambda w, c: {"token": w.new_sign_in_link()}),
    "auth.verify_link_post": Rule(PUBLIC, values=lambda w, c: {"token": w.new_sign_in_link()}),
    "auth.logout": Rule(PUBLIC),
    "auth.google_start": Rule(PUBLIC),
    "google.login": Rule(PUBLIC),
    "google.authorized": Rule(PUBLIC),
    # signed-in pages
    "home.index": Rule(LOGIN),
    "me.profile": Rule(LOGIN),
    "me.create_token_post": Rule(SESSION, body=lambda w, c: {"name": unique("t"), "expires_days": "30"}),
    "me.revoke_token_post": Rule(LOGIN, values=_own_token),
    "me.sign_out_everywhere_post": Rule(SESSION),
    "me.refresh_groups_post": Rule(LOGIN),
    "jobs.show_job": Rule(LOGIN, values=_own_job),
    "jobs.retry_job_post": Rule(LOGIN, values=_own_job),
    "marketplace_browse.listing": Rule(LOGIN),
    "marketplace_browse.plugin_detail": Rule(LOGIN, values=_curated),
    "marketplace_browse.item_detail": Rule(LOGIN, values=_curated_item),
    "marketplace_browse.install_plugin": Rule(LOGIN, values=_curated),
    "marketplace_browse.remove_plugin": Rule(LOGIN, values=_curated),
    "data_browse.catalog": Rule(LOGIN, query={"q": "matrix"}),
    "data_browse.table": Rule(LOGIN, values=lambda w, c: {"table_id": matrix_table(w, synced=True, granted=True)}),
    # admin pages
    "admin_groups.list_groups": Rule(ADMIN),
    "admin_groups.create_group_post": Rule(ADMIN, body=_new_group_body),
    "admin_groups.recount_post": Rule(ADMIN),
    "admin_groups.show_group": Rule(ADMIN, values=_group),
    "admin_groups.update_group_post": Rule(ADMIN, values=_fresh_group, body=lambda w, c: {"name": unique("Renamed")}),
    "admin_groups.delete_group_post": Rule(ADMIN, values=_fresh_group),
    "admin_groups.add_member_post": Rule(ADMIN, values=_fresh_group, body=lambda w, c: {"email": ANALYST_EMAIL}),
    "admin_groups.remove_member_post": Rule(ADMIN, values=_fresh_member),
    "admin_users.list_users": Rule(ADMIN, query={"status": "active", "sort": "last_sign_in"}),
    "admin_users.create_user_post": Rule(ADMIN, body=_new_email),
    "admin_users.set_active_post": Rule(ADMIN, values=_fresh_user, body=lambda w, c: {"active": "0"}),
    "admin_users.show_user": Rule(ADMIN, values=lambda w, c: {"user_id": w.analyst_id}),
    "admin_users.update_user_post": Rule(ADMIN, values=_fresh_user, body=lambda w, c: {"name": "Renamed"}),
    "admin_users.add_membership_post": Rule(ADMIN, values=_fresh_user, body=lambda w, c: {"group_id": w.group_id}),
    "admin_users.remove_membership_post": Rule(ADMIN, values=_fresh_member),
    "admin_users.revoke_token_post": Rule(
        ADMIN, values=lambda w, c: {"user_id": w.analyst_id, "token_id": w.new_token(w.analyst_id)}
    ),
    "admin_users.revoke_all_tokens_post": Rule(ADMIN, values=_fresh_user),
    "admin_users.explain_fragment": Rule(ADMIN, values=lambda w, c: {"user_id": w.analyst_id, **_plugin_ref(w)}),
    "admin_users.status_confirm": Rule(ADMIN, values=_fresh_user),
    # access administration (admin pages)
    "admin_access.show_access": Rule(ADMIN, values=lambda w, c: {"group": w.group_id, "q": "t"}),
    "admin_access.grants_redirect": Rule(ADMIN),
    "admin_access.grant_post": Rule(
        ADMIN, body=lambda w, c: {"group_id": w.group_id, "resource_type": "table", "resource_id": unique("tbl")}
    ),
    "admin_access.revoke_post": Rule(ADMIN, values=lambda w, c: {"grant_id": w.new_grant()}),
    "admin_access.bulk_confirm": Rule(ADMIN, values=lambda w, c: {"group": w.group_id, **_bulk(w)}),
    "admin_access.bulk_post": Rule(ADMIN, body=lambda w, c: {"group": w.new_group(), **_bulk(w)}),
    "admin_access.google_sync_post": Rule(ADMIN),
    "admin_access.show_resource": Rule(ADMIN, values=lambda w, c: _plugin_ref(w)),
    "admin_tokens.list_tokens": Rule(ADMIN),
    "admin_tokens.revoke_token_post": Rule(ADMIN, values=_any_token),
    # curated marketplaces (admin pages)
    "admin_marketplaces.list_marketplaces": Rule(ADMIN),
    "admin_marketplaces.create_marketplace_post": Rule(ADMIN, body=_new_marketplace_body),
    "admin_marketplaces.sync_all_post": Rule(ADMIN),
    "admin_marketplaces.show_marketplace": Rule(ADMIN, values=_marketplace),
    "admin_marketplaces.update_marketplace_post": Rule(ADMIN, values=_marketplace, body=lambda w, c: {"name": "R"}),
    "admin_marketplaces.token_post": Rule(ADMIN, values=_marketplace, body=lambda w, c: {"action": "clear"}),
    "admin_marketplaces.sync_post": Rule(ADMIN, values=_marketplace),
    "admin_marketplaces.system_confirm": Rule(ADMIN, values=_plugin),
    "admin_marketplaces.system_post": Rule(ADMIN, values=_plugin, body=lambda w, c: {"system": "0"}),
    "admin_marketplaces.delete_post": Rule(ADMIN, values=_fresh_marketplace),
    "admin_claude_code.show_claude_code": Rule(ADMIN, query={"group": "everyone", "strict": "1"}),
    "admin_claude_code.download_settings": Rule(ADMIN, query={"group": "everyone"}),
    # the served marketplace (Claude Code, the CLI)
    "serve.marketplace_zip": Rule(LOGIN, expect=_SERVED),
    "serve.marketplace_info": Rule(LOGIN, expect=_SERVED),
    "serve.marketplace_git_json": Rule(LOGIN, expect=_SERVED),
    # OTLP intake: access tokens only (a browser session is 401 too); an empty body is a 400 past auth.
    "otlp.ingest_logs": Rule(LOGIN, expect={**_SERVED, "analyst_session": UNAUTHORIZED, "admin_session": UNAUTHORIZED}),
    "otlp.ingest_metrics": Rule(
        LOGIN, expect={**_SERVED, "analyst_session": UNAUTHORIZED, "admin_session": UNAUTHORIZED}
    ),
    # JSON API: the caller's own things
    "api.me.whoami": Rule(LOGIN),
    # Telemetry: anyone signed in uploads and marks their own sessions (an empty body is a 422).
    "api.sessions.put_session": Rule(LOGIN, values=lambda w, c: {"session_id": MATRIX_SESSION}),
    "api.sessions.put_subagent": Rule(
        LOGIN, values=lambda w, c: {"session_id": MATRIX_SESSION, "file": "agent-a1.jsonl"}
    ),
    "api.sessions.mark_private": Rule(LOGIN, values=lambda w, c: {"session_id": MATRIX_SESSION}),
    "api.usage.usage_summary": Rule(ADMIN),
    "api.usage.export_usage": Rule(ADMIN, query={"format": "csv", "since": "7d"}),
    "api.usage.prune_usage": Rule(ADMIN),
    "api.usage.reprocess_usage": Rule(ADMIN),
    # An empty question is refused (400) before the Anthropic API would be called.
    "api.usage.ask_usage": Rule(ADMIN, body=lambda w, c: {"question": ""}),
    "admin_usage.reprocess_post": Rule(ADMIN),
    "admin_usage.usage": Rule(ADMIN),
    "admin_usage.user_sessions_fragment": Rule(ADMIN, values=lambda w, c: {"user_id": w.analyst_id}),
    "admin_usage.download_session": Rule(
        ADMIN, values=lambda w, c: {"user_id": w.analyst_id, "name": matrix_session_file(w)}
    ),
    "admin_usage.download_all_sessions": Rule(ADMIN, values=lambda w, c: {"user_id": w.analyst_id}),
    "api.me.my_effective_access": Rule(LOGIN),
    "api.tokens.list_tokens": Rule(LOGIN),
    "api.tokens.create_token": Rule(SESSION, body=lambda w, c: {"name": unique("t"), "expires_days": 30}),
    "api.tokens.revoke_token": Rule(LOGIN, values=_own_token),
    "api.jobs.get_job": Rule(LOGIN, values=_own_job),
    "api.marketplaces.my_stack": Rule(LOGIN),
    "api.marketplace_browse.list_items": Rule(LOGIN),
    "api.marketplace_browse.get_plugin": Rule(LOGIN, values=_curated),
    "api.marketplace_browse.get_item": Rule(LOGIN, values=_curated_item),
    "api.marketplaces.install_plugin": Rule(LOGIN, values=_curated),
    "api.marketplaces.uninstall_plugin": Rule(LOGIN, values=_curated),
    "api.marketplaces.list_marketplaces": Rule(ADMIN),
    "api.marketplaces.create_marketplace": Rule(ADMIN, body=_new_marketplace_body),
    "api.marketplaces.get_marketplace": Rule(ADMIN, values=_marketplace),
    "api.marketplaces.update_marketplace": Rule(ADMIN, values=_marketplace, body=lambda w, c: {"description": "d"}),
    "api.marketplaces.delete_marketplace": Rule(ADMIN, values=_fresh_marketplace),
    "api.marketplaces.sync_marketplace": Rule(ADMIN, values=_marketplace),
    "api.marketplaces.sync_all_marketplaces": Rule(ADMIN),
    "api.marketplaces.list_plugins": Rule(ADMIN, values=_marketplace),
    "api.marketplaces.sync_history": Rule(ADMIN, values=_marketplace),
    "api.marketplaces.system_preview": Rule(ADMIN, values=_plugin),
    "api.marketplaces.mark_system": Rule(ADMIN, values=_plugin),
    "api.marketplaces.unmark_system": Rule(ADMIN, values=_plugin),
    # JSON API: administration
    "api.access.list_resource_types": Rule(ADMIN),
    "api.access.list_groups": Rule(ADMIN),
    "api.access.create_group": Rule(ADMIN, body=_new_group_body),
    "api.access.get_group": Rule(ADMIN, values=_group),
    "api.access.update_group": Rule(ADMIN, values=_fresh_group, body=lambda w, c: {"description": "changed"}),
    "api.access.delete_group": Rule(ADMIN, values=_fresh_group),
    "api.access.list_members": Rule(ADMIN, values=_group),
    "api.access.add_member": Rule(ADMIN, values=_fresh_group, body=lambda w, c: {"email": ANALYST_EMAIL}),
    "api.access.remove_member": Rule(ADMIN, values=_fresh_member),
    "api.access.list_grants": Rule(ADMIN),
    "api.access.create_grant": Rule(
        ADMIN,
        body=lambda w, c: {"group_id": w.group_id, "resource_type": "table", "resource_id": unique("tbl")},
    ),
    "api.access.delete_grant": Rule(ADMIN, values=lambda w, c: {"grant_id": w.new_grant()}),
    "api.access.get_access": Rule(ADMIN, values=lambda w, c: {"group": w.group_id}),
    "api.access.resource_access": Rule(ADMIN, values=lambda w, c: _plugin_ref(w)),
    "api.access.google_sync": Rule(ADMIN),
    "api.claude_code.get_claude_code": Rule(ADMIN, query={"group": "everyone"}),
    "api.claude_code.get_managed_settings": Rule(ADMIN, query={"group": "everyone", "strict": "0"}),
    "api.admin_users.list_users": Rule(ADMIN, query={"method": "never", "page": "1"}),
    "api.admin_users.create_user": Rule(ADMIN, body=_new_email),
    "api.admin_users.get_user": Rule(ADMIN, values=lambda w, c: {"user_ref": ANALYST_EMAIL}),
    "api.admin_users.update_user": Rule(ADMIN, values=_fresh_user_ref, body=lambda w, c: {"name": "Renamed"}),
    "api.admin_users.deactivate_user": Rule(ADMIN, values=_fresh_user_ref),
    "api.admin_users.activate_user": Rule(ADMIN, values=_fresh_user_ref),
    "api.admin_users.list_memberships": Rule(ADMIN, values=lambda w, c: {"user_ref": w.analyst_id}),
    "api.admin_users.add_membership": Rule(ADMIN, values=_fresh_user_ref, body=lambda w, c: {"group_id": w.group_id}),
    "api.admin_users.remove_membership": Rule(
        ADMIN, values=lambda w, c: dict(zip(("group_id", "user_ref"), w.new_member(), strict=True))
    ),
    "api.admin_users.list_tokens": Rule(ADMIN, values=lambda w, c: {"user_ref": w.analyst_id}),
    "api.admin_users.revoke_all_tokens": Rule(ADMIN, values=_fresh_user_ref),
    "api.admin_users.revoke_token": Rule(
        ADMIN, values=lambda w, c: {"user_ref": w.analyst_id, "token_id": w.new_token(w.analyst_id)}
    ),
    "api.admin_users.explain": Rule(ADMIN, values=lambda w, c: {"user": ANALYST_EMAIL, **_plugin_ref(w)}),
    "api.admin_users.user_effective_access": Rule(ADMIN, values=lambda w, c: {"user_ref": w.analyst_id}),
    "api.tokens.admin_list_tokens": Rule(ADMIN),
    "api.tokens.admin_revoke_token": Rule(ADMIN, values=_any_token),
    # admin pages: data tables
    "admin_tables.list_tables": Rule(ADMIN),
    "admin_activity.show_activity": Rule(ADMIN, query={"since": "24h", "action": "group."}),
    "admin_activity.health_fragment": Rule(ADMIN),
    "admin_activity.show_syncs": Rule(ADMIN),
    "admin_activity.show_changes": Rule(ADMIN, query={"since": "24h", "type": "group"}),
    "api.activity.list_changes": Rule(ADMIN, query={"limit": "5"}),
    "api.activity.syncs": Rule(ADMIN),
    "api.activity.list_activity": Rule(ADMIN, query={"limit": "5"}),
    "api.activity.health": Rule(ADMIN),
    "admin_feedback.list_feedback": Rule(ADMIN, query={"status": "open"}),
    "admin_sessions.list_sessions": Rule(ADMIN, query={"sort": "findings", "type": "tool_error"}),
    "admin_sessions.show_session": Rule(ADMIN, values=_stored_session),
    "admin_sessions.show_subagent": Rule(ADMIN, values=_stored_subagent),
    "api.sessions_admin.list_sessions": Rule(ADMIN, query={"since": "30d"}),
    "api.sessions_admin.get_session": Rule(ADMIN, values=_stored_session),
    "admin_feedback.show_feedback": Rule(ADMIN, values=_feedback_report),
    "admin_feedback.triage_post": Rule(ADMIN, values=lambda w, c: {**_feedback_report(w, c), "action": "assign"}),
    "api.feedback.create_feedback": Rule(LOGIN, body=lambda w, c: {"message": "It broke."}),
    "api.feedback.list_my_feedback": Rule(LOGIN),
    "api.feedback.list_feedback": Rule(ADMIN),
    "api.feedback.get_feedback": Rule(ADMIN, values=_feedback_report),
    "api.flea.preview": Rule(LOGIN, body=lambda w, c: {}),
    "api.flea.create_entity": Rule(LOGIN, body=lambda w, c: {}),
    "api.flea.list_entities": Rule(LOGIN, query={"sort": "most_installed"}),
    "api.flea.list_categories": Rule(LOGIN),
    "api.flea.get_entity": Rule(LOGIN, values=_flea),
    "api.flea.create_version": Rule(LOGIN, values=_flea, body=lambda w, c: {}),
    "api.flea.get_version": Rule(LOGIN, values=lambda w, c: {**_flea(w, c), "number": 1}),
    "api.flea.get_file": Rule(
        LOGIN, values=lambda w, c: {**_flea(w, c), "number": 1, "path": "skills/matrix-shared/SKILL.md"}
    ),
    "api.flea.rollback": Rule(LOGIN, values=_flea, body=lambda w, c: {"version": 1}),
    "api.flea.archive": Rule(LOGIN, values=_fresh_flea),
    "api.flea.unarchive": Rule(LOGIN, values=_flea),
    "api.flea.install": Rule(LOGIN, values=_flea),
    "api.flea.uninstall": Rule(LOGIN, values=_flea),
    "api.flea.admin_queue": Rule(ADMIN, query={"status": "all"}),
    "api.flea.decide": Rule(ADMIN, values=_flea_version("approve")),
    "api.flea.delete_entity": Rule(ADMIN, values=_fresh_flea),
    "flea_pages.new_entity": Rule(LOGIN),
    "flea_pages.new_entity_post": Rule(LOGIN, body=lambda w, c: {}),
    "flea_pages.entity_detail_page": Rule(LOGIN, values=_flea),
    "flea_pages.status_fragment": Rule(LOGIN, values=_flea),
    "flea_pages.install_entity": Rule(LOGIN, values=_flea),
    "flea_pages.remove_entity": Rule(LOGIN, values=_flea),
    "flea_pages.new_version_post": Rule(LOGIN, values=_flea, body=lambda w, c: {}),
    "flea_pages.version_detail": Rule(LOGIN, values=lambda w, c: {**_flea(w, c), "number": 1}),
    "flea_pages.item_page": Rule(LOGIN, values=lambda w, c: {**_flea(w, c), "kind": "skill", "item": "matrix-shared"}),
    "flea_pages.archive_post": Rule(LOGIN, values=_fresh_flea, body=lambda w, c: {"archived": "1"}),
    "flea_pages.rollback_post": Rule(LOGIN, values=_flea, body=lambda w, c: {"version": "1"}),
    "admin_flea.queue": Rule(ADMIN, query={"status": "all"}),
    "admin_flea.review_job_fragment": Rule(ADMIN, values=_flea_version_id),
    "admin_flea.approve_post": Rule(ADMIN, values=_flea_version_id),
    "admin_flea.reject_post": Rule(ADMIN, values=_flea_version_id, body=lambda w, c: {"reason": "no"}),
    "admin_flea.rerun_post": Rule(ADMIN, values=_flea_version_id),
    "admin_flea.delete_post": Rule(ADMIN, values=_fresh_flea),
    "api.feedback.triage_feedback": Rule(ADMIN, values=lambda w, c: {**_feedback_report(w, c), "action": "reopen"}),
    "admin_tables.table_options_fragment": Rule(ADMIN, query={"source_type": "postgres"}),
    "admin_tables.register_table_post": Rule(ADMIN, body=lambda w, c: matrix_register_form(w)),
    "admin_tables.show_table": Rule(ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}),
    "admin_tables.update_table_post": Rule(
        ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}, body=lambda w, c: matrix_update_form()
    ),
    "admin_tables.sync_table_post": Rule(ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}),
    "admin_tables.unregister_table_post": Rule(ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}),
    # JSON API: data tables (helpers in tests/data/conftest.py)
    "api.data.list_connectors": Rule(ADMIN),
    "api.data.list_registry": Rule(ADMIN),
    "api.data.get_registry_entry": Rule(ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}),
    "api.data.register_table": Rule(ADMIN, body=lambda w, c: matrix_register_body(w)),
    "api.data.update_registry_entry": Rule(
        ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}, body=lambda w, c: {"description": "changed"}
    ),
    "api.data.unregister_table": Rule(ADMIN, values=lambda w, c: {"table_id": matrix_table(w)}),
    "api.data.trigger_sync": Rule(ADMIN, body=lambda w, c: {"tables": [matrix_table(w)]}),
    "api.data.sync_manifest": Rule(LOGIN),
    "api.data.download_table": Rule(
        LOGIN, values=lambda w, c: {"table_id": matrix_table(w, synced=True, granted=True)}
    ),
    "api.data.catalog": Rule(LOGIN),
    "api.data.list_data": Rule(LOGIN),
    "api.data.get_data": Rule(LOGIN, values=lambda w, c: {"table_id": matrix_table(w, synced=True, granted=True)}),
    "api.data.list_metrics": Rule(LOGIN),
    "api.data.get_metric": Rule(LOGIN, values=lambda w, c: {"metric_id": matrix_metric()}),
    "api.data.import_metrics": Rule(
        ADMIN, body=lambda w, c: {"documents": [{"path": "matrix/m.yml", "text": f"name: {unique('m')}"}]}
    ),
    "api.data.delete_metric": Rule(ADMIN, values=lambda w, c: {"metric_id": matrix_metric()}),
    # JSON API: queries and remote tables (a 400 for a table the server holds still passed authorization)
    "api.remote.run_query": Rule(LOGIN, body=lambda w, c: {"sql": "SELECT 1 AS one"}),
    "api.remote.table_schema": Rule(
        LOGIN, values=lambda w, c: {"table_id": matrix_table(w, synced=True, granted=True)}
    ),
    "api.remote.sample": Rule(LOGIN, values=lambda w, c: {"table_id": matrix_table(w, synced=True, granted=True)}),
    "api.remote.scan_estimate": Rule(LOGIN, body=lambda w, c: {"table": matrix_table(w, synced=True, granted=True)}),
    "api.remote.scan": Rule(LOGIN, body=lambda w, c: {"table": matrix_table(w, synced=True, granted=True)}),
}

ADD_A_RULE = (
    "Add an entry for each to RULES in tests/access/test_authz_matrix.py: "
    '"<endpoint>": Rule(PUBLIC | LOGIN | SESSION | ADMIN, values=<URL parameters>, body=<form/JSON>), '
    "using World helpers (or new ones) to create real ids."
)


def app_routes(app: Flask) -> list[tuple[str, str, str]]:
    """``(endpoint, method, rule)`` for every route of the app (HEAD/OPTIONS left out)."""
    routes = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, rule.rule))
    return sorted(routes, key=lambda r: (r[2], r[1]))


# -- callers -----------------------------------------------------------------------------


def _browser_session(app: Flask, user_id: str | None) -> tuple[dict[str, Any], str]:
    """A signed cookie session (optionally signed in) and the CSRF form token that matches it."""
    client = app.test_client()
    if user_id:
        with client.session_transaction() as sess:
            sess.update(session_cookie(user_id))
    html = client.get("/me" if user_id else "/login").data
    field_ = BeautifulSoup(html, "html.parser").find("input", {"name": "csrf_token"})
    assert field_ is not None, "no CSRF token on the page"
    with client.session_transaction() as sess:
        return dict(sess), str(field_["value"])


def make_callers(app: Flask, world: World) -> dict[str, Caller]:
    from agnes import people
    from agnes.auth.pat import create_pat, revoke_pat
    from agnes.models import utcnow
    from agnes.state import state_store

    admin_id, analyst_id = world.admin_id, world.analyst_id
    _, analyst_pat = create_pat(analyst_id, "matrix", 30)
    _, admin_pat = create_pat(admin_id, "matrix", 30)
    revoked, revoked_pat = create_pat(analyst_id, "matrix-revoked", 30)
    revoke_pat(revoked.id, owner_id=analyst_id)
    expired, expired_pat = create_pat(analyst_id, "matrix-expired", 30)
    with state_store().write() as con:
        con.execute(
            "UPDATE personal_access_tokens SET expires_at = ? WHERE id = ?", [utcnow() - timedelta(days=1), expired.id]
        )
    anon_session, anon_csrf = _browser_session(app, None)
    analyst_session, analyst_csrf = _browser_session(app, analyst_id)
    admin_session, admin_csrf = _browser_session(app, admin_id)
    gone_id = world.new_user()
    _, gone_pat = create_pat(gone_id, "matrix-gone", 30)
    gone_session, gone_csrf = _browser_session(app, gone_id)
    people.set_user_active(gone_id, False, actor_id=admin_id)
    out_session, out_csrf = _browser_session(app, analyst_id)
    signed_out = app.test_client()
    with signed_out.session_transaction() as sess:
        sess.update(out_session)
    assert signed_out.post("/logout", data={"csrf_token": out_csrf}).status_code == 303
    return {
        "expired_pat": Caller("expired_pat", analyst_id, token=expired_pat),
        "deactivated_session": Caller("deactivated_session", gone_id, session=gone_session, csrf=gone_csrf),
        "deactivated_pat": Caller("deactivated_pat", gone_id, token=gone_pat),
        "signed_out_session": Caller("signed_out_session", analyst_id, session=out_session, csrf=out_csrf),
        "anonymous": Caller("anonymous", None, session=anon_session, csrf=anon_csrf),
        "analyst_session": Caller("analyst_session", analyst_id, session=analyst_session, csrf=analyst_csrf),
        "analyst_pat": Caller("analyst_pat", analyst_id, token=analyst_pat),
        "admin_session": Caller("admin_session", admin_id, session=admin_session, csrf=admin_csrf),
        "admin_pat": Caller("admin_pat", admin_id, token=admin_pat),
        "revoked_pat": Caller("revoked_pat", analyst_id, token=revoked_pat),
    }


# -- calling and classifying -------------------------------------------------------------


def call(app: Flask, world: World, caller: Caller, endpoint: str, method: str):  # type: ignore[no-untyped-def]
    """Make one request as ``caller``; returns ``(path, response)``."""
    from flask import url_for

    rule = RULES[endpoint]
    values = rule.values(world, caller) if rule.values else {}
    with app.test_request_context():
        path = url_for(endpoint, **values, **rule.query)
    is_api = path.startswith("/api/")
    client = app.test_client()  # one browser per call: sign-out or sign-in cannot leak into the next
    headers: dict[str, str] = {}
    body = rule.body(world, caller) if rule.body else {}
    if caller.token:
        headers["Authorization"] = f"Bearer {caller.token}"
    else:
        with client.session_transaction() as sess:
            sess.update(caller.session or {})
            if caller.signed_in and caller.user_id:
                # A fresh server-side session per call: a sign-out by an earlier call must not leak.
                sess.update(session_cookie(caller.user_id))
        if method != "GET":
            if is_api:
                headers["X-CSRFToken"] = caller.csrf or ""
            else:
                body = {**body, "csrf_token": caller.csrf}
    kwargs: dict[str, Any] = {"headers": headers}
    if method != "GET":
        kwargs["json" if is_api else "data"] = body
    return path, client.open(path, method=method, **kwargs)


def classify(resp, path: str, is_api: bool) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """``(outcome class, detail)`` of a response; also checks the class's shape."""
    status = resp.status_code
    if status in (301, 302, 303, 307, 308):
        target = urlsplit(resp.location)
        nxt = parse_qs(target.query).get("next")
        if target.path == "/login" and nxt:
            # After a GET, sign-in returns to that page; after a POST (no Referer here), to the home page.
            wanted = path if resp.request.method == "GET" else "/"
            detail = "" if nxt[0] == wanted else f"next={nxt[0]!r}, expected {wanted!r}"
            return LOGIN_REDIRECT, detail
        return OK, f"{status} → {resp.location}"
    if status in (401, 403):
        outcome = UNAUTHORIZED if status == 401 else FORBIDDEN
        if is_api:
            data = resp.get_json(silent=True)
            if not (isinstance(data, dict) and data.get("error")):
                return outcome, f"{status} without a JSON error body"
        return outcome, ""
    if status == 400 and _error_code(resp, is_api) == "csrf_failed":
        return "csrf_failed", "the matrix sends a valid CSRF token; it was rejected"
    if status == 404:
        return "not_found", "404: fill the URL parameters with real ids"
    if status >= 500:
        return "server_error", f"{status}"
    return OK, ""


def _error_code(resp, is_api: bool) -> str | None:  # type: ignore[no-untyped-def]
    if is_api:
        data = resp.get_json(silent=True)
        return data.get("error") if isinstance(data, dict) else None
    tag = BeautifulSoup(resp.data, "html.parser").find(attrs={"data-code": True})
    return str(tag["data-code"]) if tag else None


# -- tests -------------------------------------------------------------------------------


@pytest.fixture
def world(app: Flask, auth) -> World:  # type: ignore[no-untyped-def]
    admin_id = auth.user(ADMIN_EMAIL, admin=True)
    analyst_id = auth.user(ANALYST_EMAIL)
    return World(app, admin_id, analyst_id)


def test_every_route_has_a_rule(app: Flask) -> None:
    routes = app_routes(app)
    missing = sorted({f"{endpoint} ({method} {rule})" for endpoint, method, rule in routes if endpoint not in RULES})
    assert not missing, "Routes without an authorization rule:\n  " + "\n  ".join(missing) + "\n" + ADD_A_RULE
    stale = sorted(set(RULES) - {endpoint for endpoint, _, _ in routes})
    assert not stale, f"RULES lists endpoints the app no longer has (remove them): {stale}"


@pytest.mark.parametrize("caller_name", CALLERS)
def test_authorization_matrix(app: Flask, world: World, caller_name: str) -> None:
    caller = make_callers(app, world)[caller_name]
    failures = []
    checked = 0
    for endpoint, method, _ in app_routes(app):
        rule = RULES.get(endpoint)
        if rule is None:
            continue  # reported by test_every_route_has_a_rule
        path, resp = call(app, world, caller, endpoint, method)
        is_api = path.startswith("/api/")
        outcome, detail = classify(resp, path, is_api)
        resp.close()
        expected = rule.expected(caller, is_api)
        checked += 1
        if outcome != expected or detail and outcome != OK:
            failures.append(f"{method} {path} [{endpoint}]: expected {expected}, got {outcome} {detail}".rstrip())
    assert checked >= len(RULES) - 1
    assert not failures, f"{caller_name}:\n  " + "\n  ".join(failures)


# /marketplace.git/* is answered by agnes.marketplace.gitserve.MarketplaceDispatcher in front of
# Flask, so it is not in url_map: (method, path, body, outcome for a working PAT).
GIT_PATHS = (
    ("GET", "/marketplace.git/info/refs?service=git-upload-pack", None, 200),
    ("POST", "/marketplace.git/git-upload-pack", b"0000", 200),
    ("GET", "/marketplace.git/info/refs?service=git-receive-pack", None, 403),
    ("POST", "/marketplace.git/git-receive-pack", b"0000", 403),
    ("GET", "/marketplace.git/HEAD", None, 404),
    ("GET", "/marketplace.git/objects/info/packs", None, 404),
)


@pytest.mark.parametrize("caller_name", CALLERS)
def test_marketplace_git_paths_outside_url_map(app: Flask, world: World, caller_name: str) -> None:
    """Only a working access token (HTTP Basic password or Bearer) reaches the served repository;
    push and dumb-HTTP paths are refused for everyone; a cookie is not a git credential."""
    import base64

    caller = make_callers(app, world)[caller_name]
    failures = []
    for method, path, body, for_token in GIT_PATHS:
        client = app.test_client()
        headers = {"Content-Type": "application/x-git-upload-pack-request"}
        if caller.token:
            headers["Authorization"] = "Basic " + base64.b64encode(f"x:{caller.token}".encode()).decode()
        else:
            with client.session_transaction() as sess:
                sess.update(caller.session or {})
                if caller.signed_in and caller.user_id:
                    sess.update(session_cookie(caller.user_id))
        resp = client.open(path, method=method, data=body, headers=headers)
        expected = for_token if for_token != 200 or (caller.token and caller.signed_in) else 401
        if resp.status_code != expected:
            failures.append(f"{method} {path}: expected {expected}, got {resp.status_code}")
        elif expected == 401 and "Basic" not in resp.headers.get("WWW-Authenticate", ""):
            failures.append(f"{method} {path}: 401 without a Basic challenge")
        resp.close()
    assert not failures, f"{caller_name}:\n  " + "\n  ".join(failures)


def test_analyst_cannot_watch_someone_elses_job(app: Flask, world: World) -> None:
    """Jobs are visible to admins and to the user who started them (object-level check)."""
    callers = make_callers(app, world)
    job_id = world.job(world.admin_id)
    client = app.test_client()
    for name in ("analyst_pat", "admin_pat"):
        resp = client.get(f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {callers[name].token}"})
        assert resp.status_code == (403 if name == "analyst_pat" else 200), name
    with client.session_transaction() as sess:
        sess.update(callers["analyst_session"].session or {})
    assert client.get(f"/jobs/{job_id}").status_code == 403


def test_analyst_cannot_revoke_someone_elses_token(app: Flask, world: World) -> None:
    callers = make_callers(app, world)
    token_id = world.new_token(world.admin_id)
    resp = app.test_client().delete(
        f"/api/tokens/{token_id}", headers={"Authorization": f"Bearer {callers['analyst_pat'].token}"}
    )
    assert resp.status_code in (403, 404)
    from agnes.models import tokens
    from agnes.state import state_store

    with state_store().read() as con:
        assert tokens.get_token(con, token_id).status == "active"

"""The application factory: settings, the state store, extensions, the feature areas, blueprints.

Where a new area registers itself (see docs/architecture.md): :data:`DOMAINS` (its ``init_app``:
resource types, signal receivers), :func:`agnes.views.register_blueprints` (pages),
``agnes.views.api`` (JSON API), ``agnes.jobs.schedule.PERIODIC`` (periodic jobs), the CLI's
command tables and a rule per endpoint in the authorization matrix test.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from flask import Flask, g, request
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from werkzeug.middleware.proxy_fix import ProxyFix

from agnes import audit, claude_code, cli_server, data, flea, jobs, marketplace, telemetry, templating
from agnes.auth import bearer_token, load_principal
from agnes.auth import cache as principal_cache
from agnes.config import load_settings
from agnes.errors import AppError
from agnes.jsonio import AgnesJSONProvider
from agnes.marketplace.gitserve import MarketplaceDispatcher
from agnes.models import new_id
from agnes.models.db import StateStore
from agnes.models.groups import count_active_admins
from agnes.people import ensure_seed_admin
from agnes.urls import log_base_url
from agnes.views import register_blueprints
from agnes.views.errors import register_error_handlers

# A request id from a client is echoed only if it looks like one (no header injection).
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")

# The OTLP intake (/v1/logs, /v1/metrics): authenticated by access token only.
OTLP_PREFIX = "/v1/"

# Feature areas: each module's init_app(app) registers its resource types and signal receivers.
DOMAINS: tuple[ModuleType, ...] = (marketplace, data, telemetry, claude_code, flea)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Agnes WSGI app.

    Args:
        config: overrides for settings (see ``agnes.config.SETTINGS``) and Flask keys
            such as ``TESTING``; they win over the environment.
    """
    app = Flask("agnes")
    app.json = AgnesJSONProvider(app)
    settings = load_settings(config)
    app.config.update(settings)
    app.config.update(
        SECRET_KEY=settings["AGNES_SECRET_KEY"],
        SESSION_COOKIE_NAME="agnes_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["AGNES_BASE_URL"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings["AGNES_SESSION_HOURS"]),
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in _before_request, skipped for bearer-token calls
        WTF_CSRF_TIME_LIMIT=None,  # token lives as long as the session
        WTF_CSRF_SSL_STRICT=False,  # SameSite=Lax + token; Referer checks break behind some proxies
        MAX_CONTENT_LENGTH=settings["AGNES_MAX_UPLOAD_MB"] * 1024 * 1024,
    )
    if config:
        app.config.update({k: v for k, v in config.items() if k not in settings})

    logging.basicConfig(level=app.config["AGNES_LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store = StateStore(Path(app.config["AGNES_DATA_DIR"]) / "state" / "system.duckdb")
    app.extensions["agnes_state"] = store
    store.migrate()

    principal_cache.init_app(app)
    Htmx(app)
    app.extensions["agnes_csrf"] = CSRFProtect(app)
    jobs.init_app(app)
    audit.init_app(app)
    templating.init_app(app)
    cli_server.init_app(app)
    _register_request_hooks(app)
    log_base_url(app)
    for domain in DOMAINS:
        domain.init_app(app)
    register_blueprints(app)

    # /marketplace.git/* (git smart HTTP) and repeated /marketplace.zip downloads are answered in
    # front of Flask; behind a reverse proxy, ProxyFix goes outside so they see the client address.
    app.wsgi_app = MarketplaceDispatcher(app, app.wsgi_app)  # type: ignore[method-assign]
    if app.config["AGNES_PROXY_HOPS"]:
        hops = app.config["AGNES_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    with app.app_context():
        if app.config["AGNES_SEED_ADMIN_EMAIL"]:
            ensure_seed_admin(app.config["AGNES_SEED_ADMIN_EMAIL"])
        else:
            _warn_without_admin(store)
    return app


def _warn_without_admin(store: StateStore) -> None:
    with store.read() as con:
        if count_active_admins(con) == 0:
            logging.getLogger("agnes").warning(
                "No active administrator exists: set AGNES_SEED_ADMIN_EMAIL=<your email> and restart to create one."
            )


def _register_request_hooks(app: Flask) -> None:
    csrf: CSRFProtect = app.extensions["agnes_csrf"]

    @app.before_request
    def _before_request() -> None:
        g.request_started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        ok = 0 < len(incoming) <= 64 and set(incoming) <= _REQUEST_ID_OK
        g.correlation_id = incoming if ok else new_id()
        if request.endpoint == "static":
            return
        load_principal()
        if request.path.startswith(OTLP_PREFIX):
            return  # access tokens only (agnes.views.otlp): no cookie, so no CSRF to check
        api = request.path.startswith("/api/")
        # A view that takes a smaller upload than AGNES_MAX_UPLOAD_MB says so (``view.body_limit``, bytes):
        # set before the CSRF check reads the form, so a larger body is refused while it streams.
        body_limit = getattr(app.view_functions.get(request.endpoint or ""), "body_limit", None)
        if body_limit is not None:
            request.max_content_length = body_limit()
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and not bearer_token():
            if api and g.principal is None:
                # Scripts calling the API without credentials need "sign in", not "form expired".
                raise AppError(401, "authentication_required", "Sign in or send an access token.")
            csrf.protect()
        elif bearer_token() and g.principal is None and api:
            raise AppError(401, "invalid_token", g.auth_error or "Invalid access token.")

    @app.after_request
    def _security_headers(response):  # type: ignore[no-untyped-def]
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if g.get("correlation_id"):
            headers["X-Request-ID"] = g.correlation_id
        return response

    register_error_handlers(app)

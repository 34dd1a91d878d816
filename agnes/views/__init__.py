"""Blueprint registry: one Blueprint per surface. A new page area adds its blueprint here."""

from __future__ import annotations

from flask import Flask

from agnes.auth.google import make_google_blueprint
from agnes.views import auth, data_browse, flea, health, home, jobs, marketplace_browse, me, otlp, serve
from agnes.views.admin import access as admin_access
from agnes.views.admin import activity as admin_activity
from agnes.views.admin import claude_code as admin_claude_code
from agnes.views.admin import feedback as admin_feedback
from agnes.views.admin import flea as admin_flea
from agnes.views.admin import groups as admin_groups
from agnes.views.admin import marketplaces as admin_marketplaces
from agnes.views.admin import sessions as admin_sessions
from agnes.views.admin import tables as admin_tables
from agnes.views.admin import tokens as admin_tokens
from agnes.views.admin import usage as admin_usage
from agnes.views.admin import users as admin_users
from agnes.views.api import bp as api_bp

BLUEPRINTS = (
    health.bp,
    auth.bp,
    home.bp,
    me.bp,
    jobs.bp,
    admin_groups.bp,
    admin_access.bp,
    admin_users.bp,
    admin_tokens.bp,
    admin_marketplaces.bp,
    admin_tables.bp,
    admin_activity.bp,
    admin_feedback.bp,
    admin_sessions.bp,
    admin_usage.bp,
    admin_claude_code.bp,
    admin_flea.bp,
    serve.bp,
    otlp.bp,
    marketplace_browse.bp,
    flea.bp,
    data_browse.bp,
    api_bp,
)


def register_blueprints(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_blueprint(make_google_blueprint(app))

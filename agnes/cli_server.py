"""Server-side ``flask --app wsgi <command>`` commands and embedded start-up helpers."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from agnes.audit import Actor, acting_as
from agnes.auth.pat import create_pat, parse_expires_days
from agnes.errors import AppError
from agnes.jobs.schedule import EmbeddedScheduler
from agnes.people import add_member, create_user, resolve_user

# Who the audit rows of these commands name: an operator on the server, no Agnes user.
SERVER_CLI = Actor(None, client_kind="server-cli")


def start_embedded_scheduler(app: Flask) -> None:
    """Start the in-process cron thread when jobs run embedded (no REDIS_URL, not testing)."""
    if app.config["REDIS_URL"] or app.testing or app.extensions.get("agnes_cron"):
        return

    scheduler = EmbeddedScheduler(app)
    app.extensions["agnes_cron"] = scheduler
    scheduler.start()


@click.command("create-token")
@click.argument("email")
@click.option("--name", required=True, help="Token name shown in lists, e.g. 'ci'.")
@click.option("--expires-days", type=int, default=None, help="Days until expiry (default: the server default).")
@with_appcontext
def create_token_command(email: str, name: str, expires_days: int | None) -> None:
    """Create a personal access token for EMAIL and print only the token (headless setup)."""
    try:
        user = resolve_user(email)
        days = parse_expires_days(
            expires_days if expires_days is not None else current_app.config["AGNES_PAT_DEFAULT_DAYS"]
        )
        with acting_as(SERVER_CLI):
            _, raw = create_pat(user.id, name, days)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(raw)


@click.command("create-user")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--admin", is_flag=True, help="Also add the user to the Admin group.")
@with_appcontext
def create_user_command(email: str, name: str, admin: bool) -> None:
    """Create a user (and optionally make them an admin) without the web UI."""
    try:
        with acting_as(SERVER_CLI):
            user = create_user(email, name)
            if admin:
                add_member("admin", user.email, actor_id=None)
    except AppError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(user.id)


def init_app(app: Flask) -> None:
    app.cli.add_command(create_token_command)
    app.cli.add_command(create_user_command)

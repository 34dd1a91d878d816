"""Periodic clean-up of short-lived state."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from agnes.models import tokens, utcnow, web_sessions
from agnes.state import state_store


def run_prune_magic_links() -> int:
    """Delete sign-in link records older than twice their lifetime, and browser sessions that
    expired or were revoked more than a day ago; returns how many went."""
    ttl = int(current_app.config["AGNES_MAGIC_LINK_TTL"])
    with state_store().write() as con:
        links = tokens.prune_magic_links(con, older_than_seconds=2 * ttl)
        sessions = web_sessions.prune_sessions(con, older_than=utcnow() - timedelta(days=1))
    return links + sessions

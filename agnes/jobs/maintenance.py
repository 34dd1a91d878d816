"""Periodic clean-up of short-lived state."""

from __future__ import annotations

from flask import current_app

from agnes.models import tokens
from agnes.state import state_store


def run_prune_magic_links() -> int:
    """Delete sign-in link records older than twice their lifetime; returns how many went."""
    ttl = int(current_app.config["AGNES_MAGIC_LINK_TTL"])
    with state_store().write() as con:
        return tokens.prune_magic_links(con, older_than_seconds=2 * ttl)

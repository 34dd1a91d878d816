"""Access to the process's state store from inside an app context."""

from __future__ import annotations

from flask import current_app

from agnes.models.db import StateStore


def state_store() -> StateStore:
    """The app's :class:`StateStore` (one per process, created by ``create_app``)."""
    return current_app.extensions["agnes_state"]

"""A marker that changes whenever anything a served marketplace depends on changes.

Served sets are cached per process keyed by this marker (:mod:`agnes.marketplace.resolver`),
so a warm ``/marketplace.zip`` 304 needs no query beyond authentication. Every writer that
can change a user's served set calls :func:`bump` *inside* its state-store write unit: the
unit holds the store's inter-process lock, so a reader in another process that sees the new
marker can only read the database after that unit has committed (or rolled back, which is
harmless). Threads of the same process share the unit's attachment, so the marker is bumped
once more after the commit.

The marker is a small file next to the caches so that every process on the machine (web
threads, RQ work-horses, CLI admin commands) sees it.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app

from agnes.files import atomic_write_text
from agnes.models import new_id


def _path() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "marketplaces" / ".generation"


def current() -> str:
    """The current marker ('' before the first change)."""
    try:
        with open(_path(), encoding="ascii") as fh:
            return fh.read().strip()
    except FileNotFoundError:
        return ""


def bump() -> str:
    """Replace the marker atomically with a fresh random value; returns it.

    Inside a write unit the marker is replaced again after the commit: threads of this process
    share the unit's attachment, so one of them can read the new marker *and* the rows from
    before the commit, and cache them (or trust a just-revoked token) under the new marker.
    """
    from agnes.models.db import StateStoreError
    from agnes.state import state_store

    value = _replace()
    try:
        state_store().after_commit(_replace)
    except StateStoreError:  # not inside a write unit: nothing can be read before a commit
        pass
    return value


def _replace() -> str:
    value = new_id()
    atomic_write_text(_path(), value)
    return value

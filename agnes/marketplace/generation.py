"""A marker that changes whenever anything a served marketplace depends on changes.

Served sets are cached per process keyed by this marker (:mod:`agnes.marketplace.resolver`),
so a warm ``/marketplace.zip`` 304 needs no query beyond authentication. Every writer that
can change a user's served set calls :func:`bump` *inside* its state-store write unit: the
unit holds the store's inter-process lock, so a reader that sees the new marker can only
read the database after that unit has committed (or rolled back, which is harmless).

The marker is a small file next to the caches so that every process on the machine (web
threads, RQ work-horses, CLI admin commands) sees it.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import current_app

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
    """Replace the marker atomically with a fresh random value; returns it."""
    path = _path()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = new_id()
    tmp = path.with_name(f".generation.{os.getpid()}.{value}.tmp")
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(value)
    os.replace(tmp, path)
    return value

"""Secrets written by the admin UI: ``<data>/state/.env_overlay`` (``KEY=value`` lines, mode 600).

The database stores only the variable *name* (``AGNES_MARKETPLACE_<SLUG>_TOKEN``, a table's
``dsn_env``); the value lives here, or in the process environment, which wins (so operators
can inject secrets from a secret manager instead).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import current_app

from agnes.config import read_env_overlay
from agnes.files import atomic_write_text, file_lock


def overlay_path() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / ".env_overlay"


def read_secret(name: str | None) -> str:
    """The value of a secret variable: the environment first, then the overlay ('' if unset)."""
    if not name:
        return ""
    return os.environ.get(name) or read_env_overlay(overlay_path()).get(name, "")


def secret_environment() -> dict[str, str]:
    """Every variable a secret may be read from: the overlay, overridden by the process env."""
    return {**read_env_overlay(overlay_path()), **os.environ}


def write_secret(name: str, value: str | None) -> None:
    """Set (or, with ``None``/``''``, remove) one variable in the overlay, atomically, mode 600.

    A lock file serializes concurrent writers (web threads, CLI processes).
    """
    path = overlay_path()
    with file_lock(path.with_name(".env_overlay.lock")):
        values = read_env_overlay(path)
        if value:
            values[name] = value
        else:
            values.pop(name, None)
        lines = ["# Written by Agnes: secrets set in the admin UI. Keep mode 600."]
        lines += [f"{key}={values[key]}" for key in sorted(values)]
        atomic_write_text(path, "\n".join(lines) + "\n", mode=0o600)

"""Secrets written by the admin UI: ``<data>/state/.env_overlay`` (``KEY=value`` lines, mode 600).

The database stores only the variable *name* (``AGNES_MARKETPLACE_<SLUG>_TOKEN``); the value
lives here, or in the process environment, which wins (so operators can inject tokens
from a secret manager instead).
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from flask import current_app

from agnes.config import read_env_overlay

# Token values are single-line printable text; anything else would corrupt the file.
_VALUE_OK = re.compile(r"^[\x21-\x7e]{1,4096}$")


def overlay_path() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / ".env_overlay"


def token_env_name(slug: str) -> str:
    """``acme-tools`` → ``AGNES_MARKETPLACE_ACME_TOOLS_TOKEN``."""
    return "AGNES_MARKETPLACE_" + re.sub(r"[^A-Z0-9]", "_", slug.upper()) + "_TOKEN"


def valid_token(value: str) -> bool:
    return bool(_VALUE_OK.match(value))


def read_secret(name: str | None) -> str:
    """The value of a secret variable: the environment first, then the overlay ('' if unset)."""
    if not name:
        return ""
    return os.environ.get(name) or read_env_overlay(overlay_path()).get(name, "")


def write_secret(name: str, value: str | None) -> None:
    """Set (or, with ``None``/``''``, remove) one variable in the overlay, atomically, mode 600.

    A lock file serializes concurrent writers (web threads, CLI processes).
    """
    path = overlay_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(path.with_name(".env_overlay.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        values = read_env_overlay(path)
        if value:
            values[name] = value
        else:
            values.pop(name, None)
        tmp = path.with_name(f".env_overlay.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Written by Agnes: secrets set in the admin UI. Keep mode 600.\n")
            for key in sorted(values):
                fh.write(f"{key}={values[key]}\n")
        os.replace(tmp, path)
        os.chmod(path, 0o600)
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)

"""Tables as plain SQL functions over a DuckDB cursor (see ``agnes.models.db``)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def new_id() -> str:
    """A random 16-hex-character id (64 bits), URL safe."""
    return secrets.token_hex(8)


def utcnow() -> datetime:
    """Current time as a naive UTC datetime, the form every TIMESTAMP column holds."""
    return datetime.now(UTC).replace(tzinfo=None)

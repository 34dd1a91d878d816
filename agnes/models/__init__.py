"""Tables as plain SQL functions over a DuckDB cursor (see ``agnes.models.db``)."""

from __future__ import annotations

import secrets
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any


def new_id() -> str:
    """A random 16-hex-character id (64 bits), URL safe."""
    return secrets.token_hex(8)


def utcnow() -> datetime:
    """Current time as a naive UTC datetime, the form every TIMESTAMP column holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: datetimes as ISO 8601 text, tuples as lists (recursively)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


class Record:
    """Mixin for model dataclasses: :meth:`to_dict` is the row as the JSON API shows it.

    Every field is included except those named in ``PRIVATE`` (a class attribute), so a field
    added to the dataclass reaches the API without a second list to keep in step.
    """

    PRIVATE: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: json_value(getattr(self, f.name))
            for f in fields(self)  # type: ignore[arg-type]
            if f.name not in self.PRIVATE and not f.name.startswith("_")
        }

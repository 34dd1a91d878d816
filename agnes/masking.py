"""Masking at render: what admins see of stored values (the database keeps them as written).

* SQL text (a string that parses as a statement) has its literals replaced by ``?``: a query's
  shape tells what happened, its values may be personal data.
* Long strings are cut (:data:`CUT` characters by default) with the number of characters left out.
* Secret-looking values are masked again (:func:`agnes.audit.redact_text`), for rows written
  before a rule existed.
"""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp

from agnes.audit import redact_text

# Strings longer than this many characters are cut in the timeline's drawer.
CUT = 128
# A string worth parsing as SQL starts with one of these words.
SQL_START = re.compile(r"^\s*(select|with|insert|update|delete|create|drop|alter|copy|attach|from|pragma)\b", re.I)
# Fallback when sqlglot cannot parse: quoted strings and numbers outside identifiers.
SQL_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def mask_sql(text: str) -> str:
    """``text`` with every SQL literal replaced by ``?`` when it looks like SQL, else unchanged."""
    if not SQL_START.match(text):
        return text
    try:
        statements = sqlglot.parse(text, read="duckdb")
        masked = [
            statement.transform(lambda node: exp.Placeholder() if isinstance(node, exp.Literal) else node).sql(
                dialect="duckdb"
            )
            for statement in statements
            if statement is not None
        ]
        return "; ".join(masked)
    except (sqlglot.errors.SqlglotError, RecursionError, ValueError):
        return SQL_LITERAL.sub("?", text)


def cut(text: str, limit: int | None = CUT) -> str:
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def mask_value(value: Any, *, limit: int | None = CUT) -> Any:
    """A copy of ``value`` (JSON-like) for display: SQL literals masked, secrets masked, strings cut."""
    if isinstance(value, dict):
        return {str(k): mask_value(v, limit=limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v, limit=limit) for v in value]
    if isinstance(value, str):
        return cut(redact_text(mask_sql(value)), limit)
    return value

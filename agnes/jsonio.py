"""JSON request bodies, parsed one way for every endpoint (Flask's JSON provider).

A body is refused as invalid JSON (400 ``invalid_json``) when it is larger than
:data:`MAX_BODY_BYTES` or nested deeper than :data:`MAX_DEPTH` (``[`` × 100,000 used to exhaust
the parser's recursion and answer 500). Text the state store cannot hold (lone UTF-16 surrogates,
NUL) is refused by :func:`check_text`, naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

from agnes.errors import Invalid

# Largest JSON request body (bytes); uploads of files use their own endpoints and limits.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Deepest nesting of arrays and objects a request body may have (ours need 4).
MAX_DEPTH = 32
# Characters no stored text may hold: UTF-16 surrogates (JSON can escape them, UTF-8 cannot
# encode them) and NUL.
UNSTORABLE_RE = re.compile(r"[\ud800-\udfff\x00]")


class BodyRefused(ValueError):
    """The body is not JSON this server accepts (a ValueError, so ``get_json(silent=True)`` skips it)."""


class AgnesJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with a size and nesting limit on what it parses."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if len(s) > MAX_BODY_BYTES:
            raise BodyRefused(f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB")
        try:
            value = super().loads(s, **kwargs)
        except RecursionError:
            raise BodyRefused(f"the body is nested deeper than {MAX_DEPTH} levels") from None
        if _depth(value) > MAX_DEPTH:
            raise BodyRefused(f"the body is nested deeper than {MAX_DEPTH} levels")
        return value


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_text(value: Any, path: str = "") -> None:
    """Raise Invalid (400 ``invalid_text``, ``field`` = the key path, e.g. ``documents[0].text``)
    when a string anywhere in ``value`` (keys included) holds characters no stored text may hold."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE_RE.search(item):
                raise Invalid(
                    "invalid_text",
                    f"{where or 'The body'} holds characters that cannot be stored (NUL or a lone surrogate).",
                    field=where or None,
                )
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                stack.append((str(key), child_path))
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))

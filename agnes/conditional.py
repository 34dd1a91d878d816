"""Conditional requests (RFC 9110 §13): the one ``If-None-Match`` matcher every download uses."""

from __future__ import annotations


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header value matches ``etag`` (the bare tag, no quotes).

    Uses the weak comparison RFC 9110 prescribes for ``If-None-Match``: ``W/"x"`` matches ``x``;
    ``*`` matches any current representation; a list of tags matches when any one does.
    """
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.removeprefix("W/").strip('"') == etag:
            return True
    return False

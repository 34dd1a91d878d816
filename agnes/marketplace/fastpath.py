"""Answering a repeated ``GET /marketplace.zip`` with ``If-None-Match`` without Flask or the store.

Claude Code hooks and ``agnes`` poll the ZIP's ETag often; almost every poll is a 304. A full
request authenticates the PAT against the state store (an attach plus three point queries,
about 6 ms on the reference machine), which alone exceeds the 3 ms budget of a 304. So after a
full, successful PAT request the serve views :func:`remember` the token (by hash) with the
user's groups and the change marker; a conditional request that presents the same token
within :data:`TTL` seconds, while the marker is unchanged, is answered here.

What this trades: a token revoked (or a user deactivated) less than ``TTL`` seconds ago can
still receive a 304, which carries no content, only "your set did not change". Every 200
(and every git request) authenticates fully. Group and grant changes bump the marker, so
they end the shortcut at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from flask import Flask

from agnes.marketplace import generation, resolver

# Seconds a remembered token may answer 304s without re-checking the state store (it equals
# the resolution of tokens' last-used time, so the recorded use stays accurate too).
TTL = 60.0
# Remembered tokens per process.
MAX_TOKENS = 4096


class TokenMemory:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[str, tuple[str, ...], str, float]] = {}

    def remember(self, raw: str, user_id: str, group_ids: tuple[str, ...], marker: str) -> None:
        key = hashlib.sha256(raw.encode()).hexdigest()
        with self.lock:
            if len(self.entries) >= MAX_TOKENS:
                self.entries.clear()
            self.entries[key] = (user_id, tuple(group_ids), marker, time.monotonic() + TTL)

    def lookup(self, raw: str, marker: str) -> tuple[str, tuple[str, ...]] | None:
        key = hashlib.sha256(raw.encode()).hexdigest()
        with self.lock:
            entry = self.entries.get(key)
        if entry is None or entry[2] != marker or entry[3] < time.monotonic():
            return None
        return entry[0], entry[1]


def memory(app: Flask) -> TokenMemory:
    return app.extensions.setdefault("agnes_marketplace_tokens", TokenMemory())


def etag_matches(header: str, etag: str) -> bool:
    candidates = {c.strip().removeprefix("W/").strip('"') for c in header.split(",")}
    return etag in candidates or "*" in candidates


def not_modified(app: Flask, environ: dict[str, Any], start_response: Any) -> list[bytes] | None:
    """A 304 for a remembered token whose served set still has the requested ETag, else None."""
    inm = environ.get("HTTP_IF_NONE_MATCH")
    scheme, _, raw = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not inm or scheme.lower() != "bearer" or not raw.strip():
        return None
    with app.app_context():
        marker = generation.current()
        known = memory(app).lookup(raw.strip(), marker)
        if known is None:
            return None
        served = resolver.cached(known[0], known[1], marker)
    if served is None or not etag_matches(inm, served.etag):
        return None
    start_response("304 Not Modified", [
        ("ETag", f'"{served.etag}"'), ("Cache-Control", "private, no-cache"), ("Vary", "Authorization"),
        ("X-Content-Type-Options", "nosniff"),
    ])
    return []

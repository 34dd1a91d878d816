"""Answering repeated ``/marketplace.zip`` downloads and polls without Flask or the state store.

Claude Code hooks, ``agnes`` and scripts fetch the served marketplace often, and almost every
fetch is a repeat (a 304, or the same cached ZIP). A full request authenticates the PAT
against the state store (an attach plus three point queries, several milliseconds), which
alone exceeds the 3 ms budget of a 304. So after a full, successful PAT request the serve
views :func:`TokenMemory.remember` the token (by hash) with the user's groups and the change
marker of :mod:`agnes.marketplace.generation`. A later request with the same token is
answered in the WSGI dispatcher while all of this holds:

* the change marker is unchanged: revoking a token, deactivating a user, any group, grant,
  subscription or sync change bumps it (``credentials_changed`` and the other signals), so
  access changes take effect on the very next request, in every process;
* less than :data:`TTL` seconds passed and the token has not expired (the TTL equals the
  resolution of a token's recorded last use, so that record stays as accurate as before);
* the served set and its ZIP are already cached, and the download was audited recently
  (downloads are audited once per user and ETag per :data:`AUDIT_WINDOW`).

Anything else falls through to Flask, which does the full work.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import datetime
from typing import Any

from flask import Flask

from agnes.marketplace import generation, resolver
from agnes.models import utcnow

# Seconds a remembered token is trusted without the state store (see the module docstring).
TTL = 60.0
# Remembered tokens per process.
MAX_TOKENS = 4096
# A user's download of one ETag is audited at most once per this many seconds.
AUDIT_WINDOW = 600.0
ZIP_HEADERS = [
    ("Content-Type", "application/zip"),
    ("Content-Disposition", "attachment; filename=agnes-marketplace.zip"),
    ("Cache-Control", "private, no-cache"),
    ("Vary", "Authorization"),
    ("X-Content-Type-Options", "nosniff"),
]


class TokenMemory:
    """token hash → (user id, group ids, change marker, trusted-until monotonic time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[str, tuple[str, ...], str, float]] = {}
        self.audited: dict[tuple[str, str], float] = {}

    def remember(
        self, raw: str, user_id: str, group_ids: tuple[str, ...], marker: str, expires_at: datetime | None
    ) -> None:
        ttl = TTL
        if expires_at is not None:
            ttl = min(ttl, (expires_at - utcnow()).total_seconds())
        if ttl <= 0:
            return
        key = hashlib.sha256(raw.encode()).hexdigest()
        with self.lock:
            if len(self.entries) >= MAX_TOKENS:
                self.entries.clear()
            self.entries[key] = (user_id, tuple(group_ids), marker, time.monotonic() + ttl)

    def lookup(self, raw: str, marker: str) -> tuple[str, tuple[str, ...]] | None:
        key = hashlib.sha256(raw.encode()).hexdigest()
        with self.lock:
            entry = self.entries.get(key)
        if entry is None or entry[2] != marker or entry[3] < time.monotonic():
            return None
        return entry[0], entry[1]

    def audit_due(self, user_id: str, etag: str) -> bool:
        with self.lock:
            return time.monotonic() - self.audited.get((user_id, etag), -AUDIT_WINDOW) >= AUDIT_WINDOW

    def audited_now(self, user_id: str, etag: str) -> None:
        with self.lock:
            if len(self.audited) >= MAX_TOKENS:
                self.audited.clear()
            self.audited[(user_id, etag)] = time.monotonic()


def memory(app: Flask) -> TokenMemory:
    return app.extensions.setdefault("agnes_marketplace_tokens", TokenMemory())


def remember_principal(app: Flask, raw: str, principal: Any, marker: str) -> None:
    """Trust this PAT for its repeats (after a full authentication; reads the token's expiry)."""
    from agnes.models import tokens
    from agnes.state import state_store

    mem = memory(app)
    if principal.token_id is None or mem.lookup(raw, marker) is not None:
        return
    with state_store().read() as con:
        token = tokens.get_token(con, principal.token_id)
    if token is not None and token.status == "active":
        mem.remember(raw, principal.user.id, principal.group_ids, marker, token.expires_at)


def etag_matches(header: str, etag: str) -> bool:
    candidates = {c.strip().removeprefix("W/").strip('"') for c in header.split(",")}
    return etag in candidates or "*" in candidates


def remembered_user(app: Flask, raw: str | None) -> tuple[str, tuple[str, ...], str] | None:
    """``(user id, group ids, marker)`` for a token trusted by :class:`TokenMemory` right now."""
    if not raw:
        return None
    with app.app_context():
        marker = generation.current()
    known = memory(app).lookup(raw, marker)
    return (known[0], known[1], marker) if known else None


def serve_zip(app: Flask, environ: dict[str, Any], start_response: Any) -> Any:
    """A 304 or the cached ZIP for a remembered token, else None (Flask answers)."""
    scheme, _, raw = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    known = remembered_user(app, raw.strip())
    if known is None:
        return None
    user_id, group_ids, marker = known
    with app.app_context():
        served = resolver.cached(user_id, group_ids, marker)
        if served is None:
            return None
        from agnes.marketplace.packager import cache_root

        path = cache_root() / "zip-cache" / f"{served.etag}.zip"
    etag_header = ("ETag", f'"{served.etag}"')
    if etag_matches(environ.get("HTTP_IF_NONE_MATCH", ""), served.etag):
        start_response("304 Not Modified", [etag_header, *ZIP_HEADERS[2:]])
        return []
    mem = memory(app)
    if mem.audit_due(user_id, served.etag):
        return None
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed by the WSGI server through the file wrapper)
    except FileNotFoundError:
        return None
    size = os.fstat(handle.fileno()).st_size
    start_response("200 OK", [etag_header, ("Content-Length", str(size)), *ZIP_HEADERS])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(handle, 1 << 20)
    from werkzeug.wsgi import FileWrapper

    return FileWrapper(handle, 1 << 20)

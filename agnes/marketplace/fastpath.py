"""Answering repeated ``/marketplace.zip`` downloads and polls without Flask or the state store.

Claude Code hooks, ``agnes`` and scripts fetch the served marketplace often, and almost every
fetch is a repeat (a 304, or the same cached ZIP). A request whose token the foundation's
principal cache (:mod:`agnes.auth.cache`) trusts right now, from the same client IP, is
answered in the WSGI dispatcher while all of this holds:

* the access marker is unchanged (a token revoked, a user deactivated, a membership changed
  end the trust at once, in every process), the entry is younger than the cache's TTL and the
  token has not expired;
* the served set is cached under the unchanged marker of :mod:`agnes.marketplace.generation`
  (grant, subscription and sync changes) and its ZIP is built;
* the download was audited recently (once per user and ETag per :data:`AUDIT_WINDOW`).

Anything else falls through to Flask, which does the full work (and fills the caches).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from flask import Flask

from agnes.marketplace import generation, resolver

# (user, ETag) download records kept per process before the table is emptied.
MAX_AUDITED = 4096
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
    """When each (user, ETag) download was last audited, so repeats are audited once per window."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.audited: dict[tuple[str, str], float] = {}

    def audit_due(self, user_id: str, etag: str) -> bool:
        with self.lock:
            return time.monotonic() - self.audited.get((user_id, etag), -AUDIT_WINDOW) >= AUDIT_WINDOW

    def audited_now(self, user_id: str, etag: str) -> None:
        with self.lock:
            if len(self.audited) >= MAX_AUDITED:
                self.audited.clear()
            self.audited[(user_id, etag)] = time.monotonic()


def memory(app: Flask) -> TokenMemory:
    return app.extensions.setdefault("agnes_marketplace_tokens", TokenMemory())


def etag_matches(header: str, etag: str) -> bool:
    candidates = {c.strip().removeprefix("W/").strip('"') for c in header.split(",")}
    return etag in candidates or "*" in candidates


def remembered_user(app: Flask, raw: str | None, ip: str | None) -> tuple[str, tuple[str, ...], str] | None:
    """``(user id, group ids, served-set marker)`` for a token the principal cache
    (:mod:`agnes.auth.cache`) trusts right now from this client IP, else None."""
    if not raw:
        return None
    from agnes.auth.cache import access_marker, principal_cache, token_key

    with app.app_context():
        principal = principal_cache().get(token_key(raw, ip), access_marker())
        if principal is None:
            return None
        return principal.user.id, principal.group_ids, generation.current()


def serve_zip(app: Flask, environ: dict[str, Any], start_response: Any) -> Any:
    """A 304 or the cached ZIP for a remembered token, else None (Flask answers)."""
    scheme, _, raw = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    known = remembered_user(app, raw.strip(), environ.get("REMOTE_ADDR"))
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

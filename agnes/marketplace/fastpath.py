"""Answering repeated ``/marketplace.zip`` downloads and polls without Flask or the state store.

Claude Code hooks, ``agnes`` and scripts fetch the served marketplace often, and almost every
fetch is a repeat (a 304, or the same cached ZIP). :func:`serve_zip` answers such a request in
the WSGI dispatcher when :func:`agnes.marketplace.serving.served_caller` can answer from the
process caches alone: the token is trusted by the principal cache from this client IP (the access
marker is unchanged, the entry is young and the token unexpired), the served set is cached under
the unchanged ``agnes.markers.MARKETPLACE`` and its ZIP is built. Anything else falls through to
Flask, which does the full work (and fills the caches). A download is audited as on the Flask path
(:func:`agnes.marketplace.serving.record_download`, once per window).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.wsgi import FileWrapper

from agnes.conditional import etag_matches
from agnes.marketplace import serving
from agnes.marketplace.packager import cache_root

ZIP_HEADERS = [
    ("Content-Type", "application/zip"),
    ("Content-Disposition", "attachment; filename=agnes-marketplace.zip"),
    ("Cache-Control", "private, no-cache"),
    ("Vary", "Authorization"),
    ("X-Content-Type-Options", "nosniff"),
]
# Bytes per read when streaming a ZIP.
BLOCK = 1 << 20


def serve_zip(app: Flask, environ: dict[str, Any], start_response: Any) -> Any:
    """A 304 or the cached ZIP for a caller the caches know, else None (Flask answers)."""
    scheme, _, raw = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    ip = environ.get("REMOTE_ADDR")
    with app.app_context():
        caller = serving.served_caller(raw.strip(), ip, cached_only=True)
        if caller is None:
            return None
        etag_header = ("ETag", f'"{caller.served.etag}"')
        if etag_matches(environ.get("HTTP_IF_NONE_MATCH"), caller.served.etag):
            start_response("304 Not Modified", [etag_header, *ZIP_HEADERS[2:]])
            return []
        try:
            handle = open(cache_root() / "zip-cache" / f"{caller.served.etag}.zip", "rb")  # noqa: SIM115 (closed by the server)
        except FileNotFoundError:
            return None
        serving.record_download(caller, "zip", ip)
    size = os.fstat(handle.fileno()).st_size
    start_response("200 OK", [etag_header, ("Content-Length", str(size)), *ZIP_HEADERS])
    wrapper = environ.get("wsgi.file_wrapper") or FileWrapper
    return wrapper(handle, BLOCK)

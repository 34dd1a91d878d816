"""URLs of this server: where the app may send a browser (local ``next=`` targets only), and the
base URL that sign-in links and CLI hints carry.

The base URL is ``AGNES_BASE_URL`` when it is set (the public URL, needed behind a reverse proxy).
Unset, it is the address a request arrived on: the local address of the connection's socket as
the server bound it (``127.0.0.1:5077`` for ``PORT=5077 make run``), never the client's ``Host``
header, which a stranger could set to have sign-in links point elsewhere. Outside a request,
``http://127.0.0.1:<PORT or 5000>``.
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, request

log = logging.getLogger(__name__)


def safe_next_path(target: str | None, default: str = "/") -> str:
    """Return ``target`` when it is a local path on this site, else ``default``.

    Rejects absolute URLs, scheme-relative ``//host`` forms, backslash tricks and anything
    with a scheme (``javascript:``), so a ``next=`` parameter can never redirect off-site.
    """
    if not target:
        return default
    target = target.strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def base_url() -> str:
    """``scheme://host:port`` (no trailing slash) links and hints use for the current request."""
    configured = str(current_app.config.get("AGNES_BASE_URL") or "")
    if configured:
        return configured
    if has_request_context():
        local = bound_url(request.environ)
        if local:
            return local
    return fallback_url()


def fallback_url() -> str:
    """``http://127.0.0.1:<PORT>`` (``PORT`` from the environment, 5000 when unset)."""
    return f"http://127.0.0.1:{os.environ.get('PORT') or 5000}"


def bound_url(environ: dict[str, Any]) -> str | None:
    """The URL of the local end of the request's connection (gunicorn and werkzeug expose the socket)."""
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if sock is None:
        return None
    try:
        host, port = sock.getsockname()[:2]
    except (OSError, TypeError, ValueError):
        return None
    if ":" in host:
        host = f"[{host}]"
    scheme = environ.get("wsgi.url_scheme") or "http"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def log_base_url(app: Flask) -> None:
    """One start-up line saying which URL sign-in links and CLI hints use."""
    configured = app.config.get("AGNES_BASE_URL")
    if configured:
        log.info("Sign-in links and CLI hints use AGNES_BASE_URL=%s", configured)
        return
    log.info(
        "AGNES_BASE_URL is unset: sign-in links and CLI hints use the address each request arrives on"
        " (%s for this machine); set AGNES_BASE_URL to the public URL behind a proxy",
        fallback_url(),
    )
    if app.config.get("AGNES_PROXY_HOPS"):
        log.warning("AGNES_PROXY_HOPS is set but AGNES_BASE_URL is not: links will name this server's own address")

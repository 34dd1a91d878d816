"""Where the app may send a browser: local redirect targets only (``next=`` parameters)."""

from __future__ import annotations

from urllib.parse import urlsplit


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

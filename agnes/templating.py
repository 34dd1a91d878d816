"""Jinja filters and context helpers (kept out of the factory module)."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, g

from agnes.models import utcnow


def timeago(value: datetime | None) -> str:
    """``3 min ago``-style text for a naive UTC datetime; ``never`` for None."""
    if value is None:
        return "never"
    seconds = (utcnow() - value.replace(tzinfo=None)).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = "seconds" if seconds >= 5 else "now"
        if text == "now":
            return "just now"
    return f"in {text}" if future else f"{text} ago"


def isodate(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def filesize(num: int | float | None) -> str:
    if num is None:
        return ""
    size = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(timeago=timeago, isodate=isodate, filesize=filesize)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def inject_principal() -> dict[str, object]:
        return {"principal": g.get("principal")}

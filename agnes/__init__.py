"""Agnes: a governed home for an organization's Claude Code marketplace, data and telemetry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the Agnes WSGI app (see :func:`agnes.app.create_app`)."""
    # Imported on call: importing any ``agnes.<module>`` (a job in an RQ work-horse, the docs
    # test reading ``agnes.config``) must not load every view, template helper and area.
    from agnes.app import create_app as factory

    return factory(config)

"""Claude Code across the fleet: the policy Agnes writes for it, and the telemetry it sends back.

* :mod:`~agnes.claude_code.managed` — a group's ``managed-settings.json`` (the ``agnes``
  marketplace with auto-update, the plugins the group must have, optional strict marketplaces,
  OpenTelemetry export to this server) and the diff against its previous download.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Nothing to register yet beyond the blueprints (the user page section comes with fleet health)."""

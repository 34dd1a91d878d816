"""Claude Code across the fleet: the policy Agnes writes for it, and the telemetry it sends back.

* :mod:`~agnes.claude_code.managed` — a group's ``managed-settings.json`` (the ``agnes``
  marketplace with auto-update, the plugins the group must have, optional strict marketplaces,
  OpenTelemetry export to this server) and the diff against its previous download;
* :mod:`~agnes.claude_code.otlp` — OTLP/HTTP payloads (protobuf, JSON, gzip) decoded with
  ``opentelemetry-proto`` and mapped to events; :mod:`~agnes.claude_code.intake` — limits,
  attribution to served plugins and storage (``otel_events``, source ``otel``), through
  :mod:`~agnes.claude_code.spool` (on disk at once, committed in one write unit a second);
* :mod:`~agnes.claude_code.fleet` — who runs the served version of each plugin, who is behind and
  since when, who never connected, hook failures, and the fleet pulse.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Nothing to register: the blueprints add the pages and the user page's section."""

"""Telemetry: analysts' Claude Code transcripts turned into usage figures (DESIGN.md, "Telemetry").

* :mod:`~agnes.telemetry.uploads` — storing ``PUT /api/sessions`` uploads, private sessions;
* :mod:`~agnes.telemetry.parser` — transcript lines → usage events and a per-file summary;
* :mod:`~agnes.telemetry.attribution` — which plugin a used skill, agent or command came from;
* :mod:`~agnes.telemetry.processor` — the incremental processor and its rollups.

The jobs that run the processor live in :mod:`agnes.jobs.telemetry`.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Nothing to register at start-up yet (no resource type; sections are added by the pages)."""

"""Liveness and readiness probes (no authentication, no audit)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from agnes.state import state_store

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    """Readiness: the state store opens and the job backend (Redis) answers."""

    checks: dict[str, str] = {}
    try:
        state_store().schema_version()
        checks["state_store"] = "ok"
    except Exception:
        log.warning("readiness: the state store does not open", exc_info=True)
        checks["state_store"] = "error: the state store does not open"
    try:
        current_app.extensions["agnes_jobs"].ping()
        checks["jobs"] = "ok" if current_app.config["REDIS_URL"] else "ok (embedded)"
    except Exception:
        log.warning("readiness: the job backend does not answer", exc_info=True)
        checks["jobs"] = "error: Redis does not answer"
    ready = all(v.startswith("ok") for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503

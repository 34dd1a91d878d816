"""Liveness and readiness probes (no authentication, no audit)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from agnes.state import state_store

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
    except Exception as exc:
        checks["state_store"] = f"error: {type(exc).__name__}"
    try:
        current_app.extensions["agnes_jobs"].ping()
        checks["jobs"] = "ok" if current_app.config["REDIS_URL"] else "ok (embedded)"
    except Exception as exc:
        checks["jobs"] = f"error: {type(exc).__name__}"
    ready = all(v.startswith("ok") for v in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503

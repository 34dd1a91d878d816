"""``state/telemetry.duckdb``: the telemetry-only database ``agnes admin ask`` queries.

It holds copies of the usage tables and ``users`` (id, email, name: no tokens, no hashes, no
other area's tables), so generated SQL can read nothing else even if validation missed
something. The processor rebuilds it after a run that changed figures, and marking a session
private rebuilds it at once (a private session must not stay queryable).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import current_app

from agnes.files import file_lock
from agnes.models import telemetry
from agnes.state import state_store


def telemetry_database() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / "telemetry.duckdb"


def refresh_telemetry_database() -> Path:
    """Rebuild the database from the state store (written beside it, then renamed over it)."""
    target = telemetry_database()
    tmp = target.with_name(f".telemetry.{os.getpid()}.{secrets.token_hex(4)}.duckdb")
    try:
        with file_lock(target.with_name("telemetry.duckdb.lock")):
            with state_store().read() as con:
                telemetry.write_telemetry_database(con, str(tmp))
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    return target

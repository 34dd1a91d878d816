"""``state/telemetry.duckdb``: the telemetry-only database ``agnes admin ask`` queries.

It holds copies of the usage tables and ``users`` (id, email, name: no tokens, no hashes, no
other area's tables), so generated SQL can read nothing else even if validation missed
something. It is rebuilt from the state store whenever the figures changed since it was built
(a processing run, a reprocess or a private mark bumps :data:`agnes.markers.USAGE`), at the
moment it is needed, so processing runs do not pay for copies nobody reads. Marking a session
private also deletes the file at once (the session must not stay on disk in any copy).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import current_app

from agnes import markers
from agnes.files import atomic_write_text, file_lock
from agnes.models import telemetry
from agnes.state import state_store


def telemetry_database() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / "telemetry.duckdb"


def _built_under() -> Path:
    return telemetry_database().with_name("telemetry.duckdb.marker")


def current_telemetry_database() -> Path:
    """The database, rebuilt first when the usage figures changed since it was built."""
    target = telemetry_database()
    marker = markers.USAGE.current()
    with file_lock(target.with_name("telemetry.duckdb.lock")):
        try:
            fresh = target.exists() and _built_under().read_text().strip() == marker
        except FileNotFoundError:
            fresh = False
        if not fresh:
            _rebuild(target)
            atomic_write_text(_built_under(), marker)
    return target


def _rebuild(target: Path) -> None:
    tmp = target.with_name(f".telemetry.{os.getpid()}.{secrets.token_hex(4)}.duckdb")
    try:
        with state_store().read() as con:
            telemetry.write_telemetry_database(con, str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)


def discard_telemetry_database() -> None:
    """Delete the copy (it is rebuilt on the next question)."""
    target = telemetry_database()
    with file_lock(target.with_name("telemetry.duckdb.lock")):
        target.unlink(missing_ok=True)
        _built_under().unlink(missing_ok=True)

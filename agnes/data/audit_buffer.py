"""Audit rows for high-frequency reads (manifest fetches, downloads), written in batches.

Writing one audit row is a write unit (about 6 ms) that would serialize every download and
double the manifest's latency. Rows are queued in memory and a background thread writes them
together every :data:`FLUSH_SECONDS` (and at exit), so each read is still audited, in order,
within a second.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from typing import Any

from flask import Flask

from agnes.audit import redact
from agnes.models import audit as audit_model
from agnes.state import state_store

log = logging.getLogger(__name__)

# How often queued rows are written (seconds).
FLUSH_SECONDS = 0.5


class AuditBuffer:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        # A weak reference: the exit hook must not keep apps (and their DuckDB instances) alive.
        atexit.register(_flush_if_alive, weakref.ref(self))

    def add(self, **row: Any) -> None:
        """Queue one row (the keyword arguments of ``agnes.models.audit.insert_audit``)."""
        import os

        with self.lock:
            self.rows.append(row)
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.pid = os.getpid()
                self.thread = threading.Thread(
                    target=_loop, args=(weakref.ref(self),), name="agnes-audit-buffer", daemon=True
                )
                self.thread.start()

    def flush(self) -> int:
        """Write every queued row now; returns how many. Failures are logged, never raised."""

        with self.lock:
            rows, self.rows = self.rows, []
        if not rows:
            return 0
        try:
            with self.app.app_context(), state_store().write() as con:
                for row in rows:
                    params = row.get("params")
                    audit_model.insert_audit(con, **{**row, "params": redact(params) if params is not None else None})
        except Exception:
            log.exception("could not write %d audit rows", len(rows))
        return len(rows)


def _loop(ref: weakref.ReferenceType[AuditBuffer]) -> None:
    """Flush every FLUSH_SECONDS while the buffer exists (holding it only while flushing)."""
    while True:
        buffer = ref()
        if buffer is None:
            return
        wake = buffer.wake
        del buffer
        wake.wait(FLUSH_SECONDS)
        wake.clear()
        buffer = ref()
        if buffer is None:
            return
        buffer.flush()
        del buffer


def _flush_if_alive(ref: weakref.ReferenceType[AuditBuffer]) -> None:
    buffer = ref()
    if buffer is not None:
        buffer.flush()


def audit_buffer(app: Flask) -> AuditBuffer:
    buffer = app.extensions.get("agnes_data_audit")
    if buffer is None:
        buffer = app.extensions["agnes_data_audit"] = AuditBuffer(app)
    return buffer

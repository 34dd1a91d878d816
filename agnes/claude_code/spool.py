"""OTLP events between a request and the state store: an append-only spool, drained in group commits.

A state-store write unit costs an attach, a commit and a checkpoint on detach (about 10-40 ms
whatever it carries), so one unit per OTLP request cannot reach thousands of events a second on
two cores. Instead each request's rows go to one Arrow IPC file under
``<AGNES_DATA_DIR>/state/otlp-spool/`` (written, ``fsync``'d, then renamed into place, so a file
is whole or absent) and the request is answered: an acknowledged batch is on disk. A drainer
thread per process commits everything the spool holds every ``AGNES_OTLP_FLUSH_MS`` in one write
unit and then removes the files. One process drains at a time (``flock`` on ``.drain.lock``); a
crash between the commit and the removal only makes the next drain skip the events already
stored (their ``event_key``). With ``AGNES_OTLP_FLUSH_MS = 0`` each request drains the spool
itself before it answers (its events are then committed when it answers; tests use this).

Beyond :data:`MAX_BACKLOG` files waiting, requests are refused with 503 (the exporter retries)
rather than filling the disk; a file that cannot be read is moved to ``bad/`` and logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from flask import Flask, current_app

from agnes.errors import AppError
from agnes.files import file_lock
from agnes.models import new_id, otel_events
from agnes.models.otel_events import PluginLoad
from agnes.state import state_store

log = logging.getLogger(__name__)

SUFFIX = ".arrow"
# Files waiting in the spool beyond which requests are refused (503, the exporter retries).
MAX_BACKLOG = 20_000
# Most files one drain commits (the rest go in the next one, right after).
MAX_FILES_PER_DRAIN = 2_000
# Seconds an idle drainer waits before looking for files nobody announced.
IDLE_CHECK = 5.0
# Key of a file's schema metadata holding its plugin_loaded rows (JSON).
LOADS_KEY = b"agnes.plugin_loads"


def spool_dir(app: Flask | None = None) -> Path:
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    return Path(app.config["AGNES_DATA_DIR"]) / "state" / "otlp-spool"


def _unavailable() -> AppError:
    return AppError(
        503,
        "intake_unavailable",
        "The events could not be stored right now; send them again.",
        headers={"Retry-After": "5"},
    )


def _encode_loads(loads: list[PluginLoad]) -> bytes:
    return json.dumps(
        [[*(getattr(x, f) for f in PluginLoad.__dataclass_fields__)] for x in loads], default=datetime.isoformat
    ).encode()


def _decode_loads(raw: bytes | None) -> list[PluginLoad]:
    if not raw:
        return []
    loads = []
    for row in json.loads(raw):
        *head, since, last = row
        loads.append(PluginLoad(*head, datetime.fromisoformat(since), datetime.fromisoformat(last)))
    return loads


class Spool:
    """The spool of one app (one per process; a forked child starts its own drainer)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.dir = spool_dir(app)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock_path = self.dir / ".drain.lock"
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.backlog = 0  # files seen waiting by the last drain

    def submit(self, table: pa.Table, loads: list[PluginLoad]) -> None:
        """Store one request's events (``table`` in :data:`otel_events.EVENT_COLUMNS` order) and
        its plugin loads durably in the spool; with ``AGNES_OTLP_FLUSH_MS = 0`` also commit them.

        Raises:
            AppError: 503 ``intake_unavailable`` (with ``Retry-After``) when the spool is too far
                behind or the file could not be written (or, flushing at once, committed).
        """
        if self.backlog > MAX_BACKLOG:
            raise _unavailable()
        if loads:
            table = table.replace_schema_metadata({LOADS_KEY: _encode_loads(loads)})
        name = f"{time.time_ns():020d}-{os.getpid()}-{new_id()}"
        tmp = self.dir / f".{name}.tmp"
        try:
            with open(tmp, "wb") as fh:
                with pa.ipc.new_file(fh, table.schema) as writer:
                    writer.write_table(table)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dir / f"{name}{SUFFIX}")
        except OSError:
            log.exception("could not write an OTLP spool file")
            tmp.unlink(missing_ok=True)
            raise _unavailable() from None
        if int(self.app.config["AGNES_OTLP_FLUSH_MS"]) <= 0:
            try:
                self.drain(blocking=True)
            except Exception:
                log.exception("could not commit the OTLP spool")
                raise _unavailable() from None
            return
        self._ensure_drainer()
        self.wake.set()

    def _ensure_drainer(self) -> None:
        with self.lock:
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.pid = os.getpid()  # after a fork the parent's thread is not ours
                self.thread = threading.Thread(
                    target=_drain_loop, args=(weakref.ref(self),), name="agnes-otlp-drain", daemon=True
                )
                self.thread.start()

    def drain(self, *, blocking: bool = False) -> int:
        """Commit the spooled files in one write unit and remove them; returns how many.

        Without ``blocking``, returns -1 at once when another process is draining.

        Raises:
            Exception: whatever the state store raised (the files stay for the next drain).
        """
        try:
            with file_lock(self.lock_path, blocking=blocking):
                return self._drain_locked()
        except BlockingIOError:
            return -1

    def waiting(self) -> bool:
        """True when spooled files wait (one directory scan)."""
        with os.scandir(self.dir) as entries:
            return any(e.name.endswith(SUFFIX) for e in entries)

    def _drain_locked(self) -> int:
        names = sorted(n for n in os.listdir(self.dir) if n.endswith(SUFFIX))
        self.backlog = len(names)
        files = [self.dir / n for n in names[:MAX_FILES_PER_DRAIN]]
        tables: list[pa.Table] = []
        loads: list[PluginLoad] = []
        good: list[Path] = []
        for path in files:
            try:
                with pa.memory_map(str(path)) as source:
                    table = pa.ipc.open_file(source).read_all()
                loads += _decode_loads((table.schema.metadata or {}).get(LOADS_KEY))
                tables.append(table.replace_schema_metadata(None))
                good.append(path)
            except (OSError, pa.ArrowInvalid, ValueError, TypeError):
                log.exception("unreadable OTLP spool file %s moved to bad/", path.name)
                (self.dir / "bad").mkdir(exist_ok=True)
                path.replace(self.dir / "bad" / path.name)
        if not good:
            return 0
        newest: dict[tuple[str, str, str, str], PluginLoad] = {}
        for load in loads:
            key = (load.user_id, load.installation, load.marketplace_name, load.plugin_name)
            if key not in newest or newest[key].last_loaded_at <= load.last_loaded_at:
                newest[key] = load
        events = pa.concat_tables(tables)
        with self.app.app_context(), state_store().write() as con:
            otel_events.insert_events(con, events)
            if newest:
                otel_events.upsert_plugin_loads(con, list(newest.values()))
        for path in good:
            path.unlink(missing_ok=True)
        self.backlog = max(0, self.backlog - len(good))
        return len(good)


def _drain_loop(ref: weakref.ReferenceType[Spool]) -> None:
    """Drain once woken (or when files wait, say left by another process or a restart), at most
    every ``AGNES_OTLP_FLUSH_MS``, while the spool exists."""
    while True:
        spool = ref()
        if spool is None:
            return
        wake = spool.wake
        interval = max(int(spool.app.config["AGNES_OTLP_FLUSH_MS"]), 1) / 1000
        del spool
        woken = wake.wait(IDLE_CHECK)
        time.sleep(interval)  # let requests gather: one commit for all of them
        wake.clear()
        spool = ref()
        if spool is None or not spool.dir.is_dir():  # gone with its app, or its data directory
            return
        if woken or spool.waiting():
            try:
                while (done := spool.drain()) >= MAX_FILES_PER_DRAIN:
                    pass
                if done < 0:  # another process is draining; its round may miss our newest files
                    spool.wake.set()
            except Exception:  # the files stay; the next round tries again
                log.exception("could not commit the OTLP spool")
                spool.wake.set()
        del spool


def spool() -> Spool:
    """This app's spool (created on first use)."""
    app: Any = current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get("agnes_otlp_spool")
    if found is None:
        found = app.extensions["agnes_otlp_spool"] = Spool(app)
    return found

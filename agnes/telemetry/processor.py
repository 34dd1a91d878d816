"""The usage processor: uploaded transcripts → ``usage_events``, ``usage_session_summary`` and
the rollups (DESIGN.md, "Telemetry").

One run (:func:`process_sessions`, job ``run_process_sessions``):

1. one read unit lists the files whose sha256 or processor version differ from their checkpoint
   (``usage_file_state``), parked files left out, and builds the attributor;
2. files are read, hashed and parsed **outside** the state-store lease, in batches;
3. each batch is one write unit: the batch's old rows deleted, its events inserted as one Arrow
   table, summaries likewise, checkpoints written and ``usage_item_daily`` rebuilt for the days
   the batch touched;
4. ``usage_item_window`` is rebuilt when anything changed (or hourly, as windows slide).

Figures count each use once: a use Claude Code also exported over OpenTelemetry
(``otel_events``) is matched to the transcript's on session, prompt and skill name, or tool use id;
the unmatched ones are kept in ``usage_otel_only`` (``otel_events.refresh_otel_only``), rebuilt
for the sessions of each batch and for those with OTLP uses that arrived since the last run, and
the rollups read both, so a use counts once whichever arrived first.

A file that cannot be read or parsed keeps its error in its checkpoint and is tried again next
run; after :data:`MAX_ATTEMPTS` failures with the same bytes it is parked (shown on
``/admin/usage``) until its bytes change. A failing file never stops the others or the rollups.
Runs are serialized by a file lock, so the periodic run, the one after an upload and a
reprocess never work at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
from flask import current_app

from agnes import audit, markers
from agnes.errors import human_message
from agnes.files import file_lock
from agnes.models import otel_events, telemetry, utcnow
from agnes.progress import Progress, no_progress
from agnes.state import state_store
from agnes.telemetry import attribution
from agnes.telemetry.parser import MCP_CALL, PROCESSOR_VERSION, SLASH_COMMAND, TOOL_USE, Parsed, parse_lines
from agnes.telemetry.uploads import sessions_dir

log = logging.getLogger(__name__)

# Failures with the same bytes before a file is parked.
MAX_ATTEMPTS = 3
# Files per write unit; a batch also ends once it holds this many events.
BATCH_FILES = 200
BATCH_EVENTS = 100_000
# Windows are rebuilt at least this often even when no file changed (they slide with time).
WINDOW_REFRESH = timedelta(hours=1)
# telemetry_meta key: the newest received_at of the OTLP uses already rolled up and how many were
# received in the margin before it (JSON). The next run rolls up the days of those received after
# it less the margin (a request stamps received_at before the spool is committed, so a late
# commit may land behind the mark), unless that is exactly what it saw last time.
OTEL_MARK = "otel_rolled_up_at"
OTEL_MARGIN = timedelta(minutes=1)


@dataclass
class RunStats:
    """What one run did (the job's result)."""

    files: int = 0
    events: int = 0
    lines: int = 0
    bad_lines: int = 0
    failed: int = 0
    parked: int = 0
    skipped: bool = False
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "events": self.events,
            "lines": self.lines,
            "bad_lines": self.bad_lines,
            "failed": self.failed,
            "parked": self.parked,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "errors": self.errors[:20],
        }


def processing_lock_path() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / "usage-processor.lock"


# Parse step, replaceable in tests to make one file fail.
parse: Callable[[bytes], Parsed] = parse_lines


class _Batch:
    """Columns of one batch's events and summaries, filled file by file."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = {c: [] for c in telemetry.EVENT_COLUMNS}
        self.summaries: dict[str, list[Any]] = {c: [] for c in telemetry.SUMMARY_COLUMNS}
        self.paths: list[str] = []
        self.states: list[telemetry.FileState] = []
        self.failures: list[telemetry.FileState] = []
        self.event_count = 0

    def add(self, pending: telemetry.PendingFile, sha: str, parsed: Parsed, attributor: attribution.Attributor) -> None:
        now = utcnow()
        cols = self.events
        user_id, session_id, path = pending.user_id, pending.session_id, pending.path
        for ev in parsed.events:
            if ev.event_type in (TOOL_USE, MCP_CALL):
                source, parent, parent_name, item_name, prefix = attribution.BUILTIN, "", "", ev.name, ""
            else:
                found = attributor.attribute(user_id, ev.name)
                source, parent, parent_name, item_name, prefix = (
                    found.source,
                    found.parent,
                    found.parent_name,
                    found.item_name,
                    found.prefix,
                )
            cols["path"].append(path)
            cols["user_id"].append(user_id)
            cols["session_id"].append(session_id)
            cols["line_no"].append(ev.line_no)
            cols["event_uuid"].append(ev.uuid or None)
            cols["occurred_at"].append(ev.occurred_at)
            cols["event_type"].append(ev.event_type)
            cols["item_type"].append(ev.item_type)
            cols["tool_name"].append(ev.tool_name)
            cols["name"].append(ev.name)
            cols["item_name"].append(item_name if ev.event_type != SLASH_COMMAND else item_name.lstrip("/"))
            cols["source"].append(source)
            cols["parent"].append(parent)
            cols["parent_name"].append(parent_name)
            cols["prefix"].append(prefix)
            cols["is_error"].append(ev.is_error)
            cols["is_sidechain"].append(ev.is_sidechain)
            cols["model"].append(ev.model)
            cols["processor_version"].append(PROCESSOR_VERSION)
            cols["prompt_id"].append(ev.prompt_id or None)
            cols["tool_use_id"].append(ev.tool_use_id or None)
        s = parsed.summary
        values = {
            "path": path,
            "user_id": user_id,
            "session_id": session_id,
            "kind": pending.kind,
            "started_at": s.started_at,
            "ended_at": s.ended_at,
            "active_seconds": s.active_seconds,
            "wall_seconds": s.wall_seconds,
            "lines": s.lines,
            "bad_lines": s.bad_lines,
            "user_messages": s.user_messages,
            "assistant_messages": s.assistant_messages,
            "tool_calls": s.tool_calls,
            "tool_errors": s.tool_errors,
            "skill_calls": s.skill_calls,
            "subagent_calls": s.subagent_calls,
            "mcp_calls": s.mcp_calls,
            "slash_commands": s.slash_commands,
            "primary_model": s.primary_model,
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "cache_read_tokens": s.cache_read_tokens,
            "cache_creation_tokens": s.cache_creation_tokens,
            "cc_version": ";".join(s.versions)[:200],
            "processor_version": PROCESSOR_VERSION,
            "processed_at": now,
        }
        for key, value in values.items():
            self.summaries[key].append(value)
        self.paths.append(path)
        self.event_count += len(parsed.events)
        self.states.append(
            telemetry.FileState(
                path, sha, PROCESSOR_VERSION, now, s.lines, s.bad_lines, len(parsed.events), 0, None, False
            )
        )

    def fail(self, pending: telemetry.PendingFile, sha: str, error: str) -> telemetry.FileState:
        attempts = (pending.attempts if sha == pending.sha256 else 0) + 1
        state = telemetry.FileState(
            pending.path, sha, PROCESSOR_VERSION, utcnow(), 0, 0, 0, attempts, error[:500], attempts >= MAX_ATTEMPTS
        )
        self.failures.append(state)
        return state

    def tables(self) -> tuple[pa.Table, pa.Table]:
        events = pa.table(self.events, schema=telemetry.EVENT_SCHEMA)
        summaries = pa.table(self.summaries)
        return events, summaries


def _read(root: Path, pending: telemetry.PendingFile) -> tuple[bytes, str]:
    data = (root / pending.path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def _commit(batch: _Batch, suffix: str) -> None:
    events, summaries = batch.tables()
    sessions = sorted(set(zip(batch.summaries["user_id"], batch.summaries["session_id"], strict=True)))
    with state_store().write() as con:
        days = telemetry.replace_file_rows(con, batch.paths, events, summaries, suffix=suffix)
        # the OTLP uses of these sessions that the transcripts now match, or no longer match
        days = sorted(set(days) | set(otel_events.refresh_otel_only(con, sessions, suffix=suffix)))
        telemetry.put_file_states(con, batch.states + batch.failures, suffix=suffix)
        if not suffix:  # a reprocess builds its daily rollup once, at the end
            telemetry.refresh_daily(con, days)


def _work(
    pending: list[telemetry.PendingFile], attributor: Any, stats: RunStats, progress: Progress, suffix: str
) -> None:
    """Read, parse and commit ``pending`` in batches (files are read outside the lease)."""
    root = sessions_dir()
    total = len(pending)
    batch = _Batch()
    for index, item in enumerate(pending, 1):
        sha = item.sha256
        try:
            data, sha = _read(root, item)
            parsed = parse(data)
            batch.add(item, sha, parsed, attributor)
            stats.files += 1
            stats.events += len(parsed.events)
            stats.lines += parsed.summary.lines
            stats.bad_lines += parsed.summary.bad_lines
        except Exception as exc:  # one bad file never stops the run
            log.warning("usage processor: %s failed: %s", item.path, exc)
            state = batch.fail(item, sha, _describe(exc))
            stats.failed += 1
            stats.parked += int(state.parked)
            stats.errors.append({"path": item.path, "error": state.last_error or ""})
        if len(batch.paths) + len(batch.failures) >= BATCH_FILES or batch.event_count >= BATCH_EVENTS:
            _commit(batch, suffix)
            batch = _Batch()
            progress(index, total, f"{index} of {total} files")
    if batch.paths or batch.failures:
        _commit(batch, suffix)
    if total:
        progress(total, total, f"{total} of {total} files")


def reprocess_marker() -> Path:
    """Present while a reprocess runs (regular runs then step aside instead of waiting)."""
    return Path(current_app.config["AGNES_DATA_DIR"]) / "state" / "usage-reprocess.running"


def process_sessions(progress: Progress = no_progress) -> RunStats:
    """Process every new or changed session file (see the module doc); returns what was done.

    While a reprocess runs, returns at once with ``skipped`` set (the reprocess covers the files
    stored when it started; later ones wait for the next run).
    """
    started = time.perf_counter()
    stats = RunStats()
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(processing_lock_path(), blocking=False))
        except BlockingIOError:
            if reprocess_marker().exists():
                stats.skipped = True
                return stats
            stack.enter_context(file_lock(processing_lock_path()))
        with state_store().read() as con:
            pending = telemetry.pending_files(con, PROCESSOR_VERSION)
            refreshed = telemetry.get_meta(con, "windows_refreshed_at")
            attributor = attribution.load(con, Path(current_app.config["AGNES_DATA_DIR"])) if pending else None
            mark = json.loads(telemetry.get_meta(con, OTEL_MARK) or "null")
            after = datetime.fromisoformat(mark["newest"]) - OTEL_MARGIN if mark else datetime.min
            _, _, newest, count = otel_events.uses_received(con, after)
            # Unless exactly what the last run saw, OTLP uses arrived since: their sessions and
            # days roll up again.
            otel_changed = bool(count) and not (
                mark and count == mark["count"] and newest is not None and newest.isoformat() == mark["newest"]
            )
        if pending:
            _work(pending, attributor, stats, progress, "")
        now = utcnow()
        stale = refreshed is None or now - datetime.fromisoformat(refreshed) >= WINDOW_REFRESH
        if stats.files or stale or otel_changed:
            with state_store().write() as con:
                if otel_changed:  # read again inside the unit: nothing lands between days and mark
                    days, sessions, newest, _ = otel_events.uses_received(con, after)
                    days = set(days) | set(otel_events.refresh_otel_only(con, sessions))
                    telemetry.refresh_daily(con, sorted(days))
                    newest = newest or now
                    count = otel_events.uses_received(con, newest - OTEL_MARGIN)[3]
                    telemetry.set_meta(con, OTEL_MARK, json.dumps({"newest": newest.isoformat(), "count": count}), now)
                telemetry.refresh_windows(con, now)
                markers.USAGE.bump()
    stats.seconds = time.perf_counter() - started
    return stats


def reprocess_sessions(progress: Progress = no_progress) -> RunStats:
    """Process every stored file again into shadow tables, then swap them in at once: pages keep
    showing the old figures until the swap. Used after a processor version bump or on demand."""
    started = time.perf_counter()
    stats = RunStats()
    marker = reprocess_marker()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    try:
        with file_lock(processing_lock_path()):
            with state_store().write() as con:
                telemetry.create_shadow_tables(con)
            with state_store().read() as con:
                files = telemetry.all_session_files(con)
                attributor = attribution.load(con, Path(current_app.config["AGNES_DATA_DIR"]))
            progress(0, len(files), f"0 of {len(files)} files")
            try:
                _work(files, attributor, stats, progress, telemetry.SHADOW)
                with state_store().write() as con:
                    otel_events.refresh_otel_only(con, None, suffix=telemetry.SHADOW)
                    telemetry.refresh_daily(
                        con, telemetry.all_event_days(con, suffix=telemetry.SHADOW), suffix=telemetry.SHADOW
                    )
                    telemetry.refresh_windows(con, utcnow(), suffix=telemetry.SHADOW)
                    telemetry.swap_shadow_tables(con)
                    telemetry.set_meta(con, "reprocessed_at", utcnow().isoformat(), utcnow())
                    markers.USAGE.bump()
            except BaseException:
                with state_store().write() as con:
                    telemetry.drop_shadow_tables(con)
                raise
    finally:
        marker.unlink(missing_ok=True)
    stats.seconds = time.perf_counter() - started
    return stats


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the uploaded file is missing from the data directory"
    return human_message(exc)


def prune_events(retention_days: int) -> dict[str, Any]:
    """Delete usage events older than ``retention_days`` (``AGNES_USAGE_RETENTION_DAYS``); rollups
    stay. 0 keeps everything: ``{"status": "skipped", "reason": ...}``. Audited ``usage.prune``.

    The one prune path: the daily job and ``POST /api/admin/usage/prune`` both call it.
    """
    if retention_days <= 0:
        return {"status": "skipped", "reason": "AGNES_USAGE_RETENTION_DAYS is 0: usage events are kept"}
    cutoff = utcnow() - timedelta(days=retention_days)
    with state_store().write() as con:
        deleted = telemetry.delete_events_before(con, cutoff)
        audit.record(con, "usage.prune", "usage_events", cutoff=cutoff.isoformat(), events=deleted["events"])
    return {"status": "pruned", "cutoff": cutoff.isoformat(), "events": deleted["events"]}


def needs_reprocess() -> bool:
    """True when checkpoints of another processor version exist (the processor was upgraded)."""
    with state_store().read() as con:
        return telemetry.outdated_files(con, PROCESSOR_VERSION) > 0

"""Syncing one table: extract outside any lock, publish atomically, rebuild views, record the outcome.

A failed extraction leaves the previous parquet and ``_meta`` in place (the new file is a temp
file that is deleted), records ``sync_state.status = 'failed'`` with the error, and raises
:class:`SyncFailed` so the job shows as failed with that message.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agnes import markers
from agnes.audit import redact_text
from agnes.data import data_dir, extracts, locations, orchestrator, secrets_env
from agnes.data.connectors import ExtractError, ExtractRequest, get_connector
from agnes.data.modes import QueryMode
from agnes.data.schedules import parse_schedule
from agnes.errors import AppError, Invalid, NotFound, human_message
from agnes.models import tables, utcnow
from agnes.progress import Progress, no_progress
from agnes.state import state_store
from agnes.units import count, filesize

log = logging.getLogger(__name__)


class SyncFailed(RuntimeError):
    """A table could not be synced; the message is safe to show (no secrets)."""


def _fail(table_id: str, started: Any, message: str, triggered_by: str | None) -> SyncFailed:
    message = redact_text(message)[:1000]
    with state_store().write() as con:
        tables.record_sync(con, table_id, status="failed", started_at=started, error=message, triggered_by=triggered_by)
    markers.TABLES.bump()
    log.warning("sync of table %s failed: %s", table_id, message)
    return SyncFailed(message)


def sync_table(table_id: str, *, triggered_by: str | None = None, progress: Progress = no_progress) -> dict[str, Any]:
    """Extract, publish and record one table. Idempotent (a re-run writes the same file).

    Returns ``{"table", "rows", "size_bytes", "hash", "sha256", "query_mode", "summary"}`` (``hash`` is
    the MD5 hex; ``summary`` the result in words: ``flights: 336,776 rows, 4.7 MiB``).

    Raises:
        NotFound: the table is not registered (any more).
        SyncFailed: the connector failed or the view name collides; recorded in sync_state.
    """
    with state_store().read() as con:
        entry = tables.get_table(con, table_id)
        owner = tables.view_owners(con).get(table_id)
    if entry is None:
        raise NotFound("table_not_found", f"No table '{table_id}'.")
    started = utcnow()
    root = data_dir()
    if owner and owner != entry.source_name:
        source_extract = extracts.source_dir(root, owner) / extracts.EXTRACT_FILE
        if source_extract.exists():
            raise _fail(
                table_id, started, orchestrator.Collision(table_id, entry.source_name, owner).message, triggered_by
            )
    progress(0, 3, f"Extracting {entry.name}")
    mode = QueryMode(entry.query_mode)
    directory = extracts.source_dir(root, entry.source_name)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".work-{table_id}-", dir=directory))
    tmp = directory / "data" / f".{table_id}.{workdir.name[-8:]}.parquet.tmp"
    try:
        try:
            connector = get_connector(entry.source_type)
            result = connector.extract(  # type: ignore[misc]
                ExtractRequest(
                    table_id=table_id,
                    spec=entry.source_spec,
                    query_mode=mode,
                    output=tmp,
                    workdir=workdir,
                    env=secrets_env(),
                    analytics_path=orchestrator.analytics_path(root),
                    data_dir=root,
                    source_roots=tuple(locations.source_roots(root)),
                )
            )
        except (ExtractError, AppError) as exc:
            raise _fail(
                table_id, started, str(exc) if isinstance(exc, ExtractError) else exc.message, triggered_by
            ) from None
        except Exception as exc:
            log.exception("connector %s crashed on table %s", entry.source_type, table_id)
            raise _fail(table_id, started, human_message(exc), triggered_by) from None
        progress(1, 3, f"Publishing {entry.name}")
        has_file = mode.has_file and result.view_sql is None
        digests, size = extracts.Digests("", ""), 0
        if has_file:
            digests, size = extracts.file_digests(tmp), tmp.stat().st_size
        elif result.source_size_bytes is not None:  # kept at its source: its size there
            size = result.source_size_bytes
        meta = extracts.MetaRow(
            table_id, entry.description, result.rows, size, started, mode.value, None if has_file else result.view_sql
        )
        published = extracts.publish(root, entry.source_name, meta, tmp if has_file else None)
        mtime_ns = published.stat().st_mtime_ns if published else None
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    progress(2, 3, "Rebuilding views")
    report = orchestrator.rebuild(root, source=entry.source_name)
    collision = report.collision_for(table_id, entry.source_name)
    if collision is not None:
        raise _fail(table_id, started, collision.message, triggered_by)
    with state_store().write() as con:
        tables.record_sync(
            con,
            table_id,
            status="ok",
            started_at=started,
            rows=result.rows,
            size_bytes=size,
            hash=digests.md5,
            sha256=digests.sha256,
            file_mtime_ns=mtime_ns,
            columns=result.columns,
            triggered_by=triggered_by,
            warning=result.warning,
        )
    markers.TABLES.bump()
    progress(3, 3, f"{result.rows} rows")
    summary = f"{table_id}: {count(result.rows or 0, 'row')}" + (f", {filesize(size)}" if has_file else "")
    if result.warning:
        log.warning("table %s: %s", table_id, result.warning)
        summary += f" (warning: {result.warning})"
    return {
        "summary": summary,
        "warning": result.warning,
        "table": table_id,
        "rows": result.rows,
        "size_bytes": size,
        "hash": digests.md5,
        "sha256": digests.sha256,
        "query_mode": mode.value,
    }


def record_interrupted(table_id: str, message: str, triggered_by: str | None = None) -> bool:
    """A sync of this table was interrupted (its worker died, or the embedded server restarted):
    remove its work folder and temp parquet, and record ``interrupted`` in the sync history (the
    previous extract stays published). Returns False when the table is gone."""
    with state_store().read() as con:
        entry = tables.get_table(con, table_id)
    if entry is None:
        return False
    directory = extracts.source_dir(data_dir(), entry.source_name)
    for leftover in [*directory.glob(f".work-{table_id}-*"), *(directory / "data").glob(f".{table_id}.*.parquet.tmp")]:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    with state_store().write() as con:
        tables.record_sync(
            con, table_id, status="interrupted", started_at=utcnow(), error=message, triggered_by=triggered_by
        )
    markers.TABLES.bump()
    log.warning("sync of table %s was interrupted: %s", table_id, message)
    return True


def tables_to_sync(table_ids: list[str] | None) -> tuple[list[str], list[str]]:
    """Which tables a "sync now" covers: the listed ones, or (no list) every table that is due or
    unscheduled. Returns ``(chosen_ids, skipped_ids)``. Raises Invalid for ids that are not registered.
    """
    now = utcnow()
    with state_store().read() as con:
        registered = {t.id: t for t in tables.list_tables(con)}
        states = tables.list_sync_states(con)
    if table_ids is not None:
        unknown = [t for t in table_ids if t not in registered]
        if unknown:
            raise Invalid("unknown_table", f"No table '{unknown[0]}'.", field="tables")
        chosen = list(dict.fromkeys(table_ids))
        skipped: list[str] = []
    else:
        chosen, skipped = [], []
        for table_id, entry in registered.items():
            try:
                schedule = parse_schedule(entry.schedule) if entry.schedule else None
            except Invalid:  # stored before the rules tightened: never due on its own
                log.warning("table %s has an unusable schedule %r", table_id, entry.schedule)
                skipped.append(table_id)
                continue
            state = states.get(table_id)
            if schedule is None or schedule.is_due(state.last_attempt if state else None, now):
                chosen.append(table_id)
            else:
                skipped.append(table_id)
    return chosen, skipped


def due_table_ids(now: Any = None) -> list[str]:
    """Tables with a schedule that is due now (the periodic tick syncs these)."""
    now = now or utcnow()
    with state_store().read() as con:
        registered = tables.list_tables(con)
        states = tables.list_sync_states(con)
    due = []
    for entry in registered:
        if not entry.schedule:
            continue
        try:
            schedule = parse_schedule(entry.schedule)
        except Invalid:
            log.warning("table %s has an unreadable schedule %r", entry.id, entry.schedule)
            continue
        state = states.get(entry.id)
        if schedule is not None and schedule.is_due(state.last_attempt if state else None, now):
            due.append(entry.id)
    return due

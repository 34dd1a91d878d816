"""The health pulse atop ``/admin/activity`` (twin ``/api/admin/activity/health``, CLI
``agnes admin activity health``; its turning red is notified by ``run_notify``): green, yellow or
red fields and one sentence. It lives with the jobs because most of what it reports is theirs.

Fields: the scheduler's heartbeat, each periodic job (last run, result, next due), the job queue
(depth, oldest queued job, workers), failed jobs in 24 h, table syncs in 24 h, marketplaces whose
last sync failed, session files waiting for processing or parked, and users active today. Other areas add fields with
:func:`register_health_check`. Each field carries the timeline filter that shows its rows.

The pulse is computed at most once per :data:`CACHE_SECONDS` for all processes (the shared cache:
Redis, or the process in the embedded mode), so polling pages cost nothing. Reading it is not
audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from flask import current_app

from agnes.cache import shared_cache
from agnes.jobs import QueueUnavailable
from agnes.jobs.backends import rq_job_id
from agnes.jobs.schedule import PERIODIC, Periodic, last_heartbeat
from agnes.models import audit as audit_model
from agnes.models import findings as findings_model
from agnes.models import marketplaces as marketplace_model
from agnes.models import tables as tables_model
from agnes.models import telemetry as telemetry_model
from agnes.models import utcnow
from agnes.models.audit import JobRun
from agnes.state import state_store
from agnes.telemetry.findings import SCANNER_VERSION
from agnes.telemetry.parser import PROCESSOR_VERSION

GREEN, YELLOW, RED = "green", "yellow", "red"
# Worst first: the pulse takes the worst colour of its fields.
SEVERITY = {GREEN: 0, YELLOW: 1, RED: 2}
# Seconds one computed pulse is served to every process.
CACHE_SECONDS = 30
CACHE_KEY = "activity:health"
# The scheduler ticks every 30 s (embedded) or more often (RQ cron): a heartbeat older than
# this many seconds is yellow, and red after CRON_RED_SECONDS (the 3 minutes).
CRON_YELLOW_SECONDS = 90
CRON_RED_SECONDS = 180
# A queued job waiting this long (seconds) is yellow, then red: workers are missing or stuck.
QUEUE_WAIT_YELLOW = 300
QUEUE_WAIT_RED = 1800
# Failed jobs in 24 h from which the field is red (any failure is yellow).
FAILED_JOBS_RED = 5
# Share of table syncs in 24 h that must succeed for yellow rather than red (the original's 95 %).
SYNC_OK_SHARE = 0.95
# Session files waiting (for processing or the failure scan) from which the field is yellow.
USAGE_BACKLOG_YELLOW = 500
# The window of "failed jobs" and "table syncs".
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class HealthField:
    """One line of the pulse.

    Attributes:
        key: stable id (``cron``, ``periodic:table-syncs``, ``queue``...).
        status: ``green``, ``yellow`` or ``red``.
        value: the short figure shown on the card ("12 s ago", "3 queued").
        detail: one sentence saying what is wrong or right.
        link: timeline filter arguments showing the rows behind the field (``{"action": "job."}``).
        data: the raw figures (timestamps ISO 8601 UTC) for scripts.
    """

    key: str
    label: str
    status: str
    value: str
    detail: str
    link: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class HealthPulse:
    """The whole pulse: the worst colour, one sentence, when it was computed, the fields."""

    status: str
    sentence: str
    checked_at: datetime
    fields: list[HealthField]

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.fields if f.status == s) for s in SEVERITY}

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "sentence": self.sentence,
            "checked_at": self.checked_at.isoformat(),
            "counts": self.counts,
            "fields": [f.to_dict() for f in self.fields],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthPulse:
        return cls(
            status=data["status"],
            sentence=data["sentence"],
            checked_at=datetime.fromisoformat(data["checked_at"]),
            fields=[HealthField(**f) for f in data["fields"]],
        )


HealthCheck = Callable[[datetime], list[HealthField]]


def ago(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h``, ``2 d`` for a duration in seconds."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


# -- the built-in checks ---------------------------------------------------------------------------


def cron_field(now: datetime) -> list[HealthField]:
    """The scheduler's heartbeat (``worker.py --cron``, or the embedded thread)."""
    heartbeat = last_heartbeat()
    link = {"action": "job.", "since": "1h"}
    if heartbeat is None:
        return [
            HealthField(
                "cron",
                "Scheduler",
                RED,
                "never",
                "The scheduler has never reported: start `python worker.py --cron`"
                " (in the embedded mode, the web process runs it).",
                link,
                {"last_heartbeat": None, "kind": None},
            )
        ]
    age = (now - heartbeat.at).total_seconds()
    status = GREEN if age <= CRON_YELLOW_SECONDS else YELLOW if age <= CRON_RED_SECONDS else RED
    detail = (
        f"The scheduler ticked {ago(age)} ago."
        if status == GREEN
        else f"The scheduler has not ticked for {ago(age)}: periodic jobs are not being started."
    )
    return [
        HealthField(
            "cron",
            "Scheduler",
            status,
            f"{ago(age)} ago",
            detail,
            link,
            {
                "last_heartbeat": heartbeat.at.isoformat(),
                "started": heartbeat.started.isoformat(),
                "kind": heartbeat.kind,
            },
        )
    ]


def _job_resources(entry: Periodic) -> list[str]:
    """The audit resources a periodic job's runs are written under (embedded and RQ job ids)."""
    job_id = f"periodic:{entry.name}"
    return sorted({f"job:{job_id}", f"job:{rq_job_id(job_id)}"})


def periodic_status(entry: Periodic, run: JobRun | None, now: datetime, cron_started: datetime | None) -> HealthField:
    """One periodic job: red when its last run failed or two cadences passed without a run,
    yellow when one run is overdue (or it never ran although the scheduler, running since
    ``cron_started``, should have started it by now)."""
    target = entry.target.rsplit(".", 1)[-1]
    link = {"action": f"job.{target}"}
    schedule = croniter(entry.cron, run.timestamp if run else (cron_started or now))
    next_due = schedule.get_next(datetime)
    cadence = (schedule.get_next(datetime) - next_due).total_seconds()
    grace = min(float(entry.timeout), cadence)  # runs are audited when they end
    data: dict[str, Any] = {
        "name": entry.name,
        "cron": entry.cron,
        "last_run": run.timestamp.isoformat() if run else None,
        "result": run.result if run else None,
        "error": run.error if run else None,
        "next_due": next_due.isoformat(),
        "cadence_seconds": cadence,
    }
    label = entry.description or entry.name
    if run is None:
        if cron_started is not None and (now - next_due).total_seconds() > grace:
            status, detail = (
                YELLOW,
                f"{label} has never run, although it was due {ago((now - next_due).total_seconds())} ago.",
            )
        else:
            status, detail = GREEN, f"{label} has not run yet; its first run is due at {next_due:%Y-%m-%d %H:%M} UTC."
        return HealthField(f"periodic:{entry.name}", label, status, "not run yet", detail, link, data)
    if run.result not in ("finished", "ok"):
        link["since"] = run.timestamp.isoformat()
        return HealthField(
            f"periodic:{entry.name}",
            label,
            RED,
            run.result or "failed",
            f"{label} {run.result or 'failed'} {ago((now - run.timestamp).total_seconds())} ago"
            + (f": {run.error}" if run.error else "."),
            link,
            data,
        )
    late = (now - next_due).total_seconds() - grace
    if late > cadence:
        status, detail = RED, f"{label} is two runs late (last run {ago((now - run.timestamp).total_seconds())} ago)."
    elif late > 0:
        status, detail = YELLOW, f"{label} is overdue by {ago(late)}."
    else:
        status, detail = GREEN, f"{label} ran {ago((now - run.timestamp).total_seconds())} ago."
    return HealthField(
        f"periodic:{entry.name}", label, status, f"{ago((now - run.timestamp).total_seconds())} ago", detail, link, data
    )


def periodic_fields(now: datetime) -> list[HealthField]:
    with state_store().read() as con:
        runs = audit_model.latest_job_runs(con, {p.name: _job_resources(p) for p in PERIODIC})
    heartbeat = last_heartbeat()
    started = heartbeat.started if heartbeat else None
    return [periodic_status(entry, runs.get(entry.name), now, started) for entry in PERIODIC]


def queue_fields(now: datetime) -> list[HealthField]:
    """Queue depth, oldest queued job and workers; failed jobs in 24 h."""
    since = now - DAY
    try:
        stats = current_app.extensions["agnes_jobs"].stats(since)
    except QueueUnavailable:
        return [
            HealthField(
                "queue", "Job queue", RED, "unreachable", "The job queue (Redis) does not answer.", {"action": "job."}
            )
        ]
    wait = (now - stats.oldest_enqueued_at).total_seconds() if stats.oldest_enqueued_at else 0.0
    if stats.workers == 0:
        status = RED if stats.depth else YELLOW
        detail = (
            f"No worker is running{f' and {stats.depth} jobs wait' if stats.depth else ''}: start `python worker.py`."
        )
    elif wait > QUEUE_WAIT_RED:
        status, detail = RED, f"The oldest queued job has waited {ago(wait)}: workers are stuck or too few."
    elif wait > QUEUE_WAIT_YELLOW:
        status, detail = YELLOW, f"The oldest queued job has waited {ago(wait)}."
    else:
        status = GREEN
        detail = f"{stats.depth} queued, {stats.workers} {'worker' if stats.workers == 1 else 'workers'}."
    queue = HealthField(
        "queue",
        "Job queue",
        status,
        f"{stats.depth} queued · {stats.workers} {'worker' if stats.workers == 1 else 'workers'}",
        detail,
        {"action": "job.", "since": "24h"},
        {
            "backend": stats.backend,
            "depth": stats.depth,
            "oldest_enqueued_at": stats.oldest_enqueued_at.isoformat() if stats.oldest_enqueued_at else None,
            "oldest_description": stats.oldest_description,
            "workers": stats.workers,
        },
    )
    failed_status = GREEN if stats.failed == 0 else RED if stats.failed >= FAILED_JOBS_RED else YELLOW
    failed = HealthField(
        "failed_jobs",
        "Failed jobs (24 h)",
        failed_status,
        str(stats.failed),
        "No job failed in 24 h." if stats.failed == 0 else f"{stats.failed} jobs failed in 24 h.",
        {"action": "job.", "result": "failed", "since": "24h"},
        {"failed": stats.failed, "since": since.isoformat()},
    )
    return [queue, failed]


def sync_fields(now: datetime) -> list[HealthField]:
    """Table syncs in 24 h (ok/failed) and marketplaces whose last sync failed."""
    with state_store().read() as con:
        counts = tables_model.count_syncs_since(con, now - DAY)
        marketplaces = marketplace_model.list_marketplaces(con)
    total = counts["ok"] + counts["failed"]
    if total == 0:
        status, detail = YELLOW, "No table synced in 24 h."
    elif counts["failed"] == 0:
        status, detail = GREEN, f"All {total} table syncs in 24 h succeeded."
    else:
        status = YELLOW if counts["ok"] / total >= SYNC_OK_SHARE else RED
        detail = f"{counts['failed']} of {total} table syncs failed in 24 h."
    link = {"action": "job.run_sync_table", "since": "24h"}
    if counts["failed"]:
        link["result"] = "failed"
    tables = HealthField(
        "table_syncs",
        "Table syncs (24 h)",
        status,
        f"{counts['ok']} ok · {counts['failed']} failed",
        detail,
        link,
        dict(counts),
    )
    failing = [m for m in marketplaces if m.last_error]
    if not failing:
        mp_status = GREEN
        mp_detail = "Every marketplace's last sync succeeded." if marketplaces else "No marketplace is registered."
    else:
        mp_status = RED if len(failing) == len(marketplaces) else YELLOW
        mp_detail = "Last sync failed: " + ", ".join(f"{m.name} ({m.last_error})" for m in failing[:5]) + "."
    mp_link = {"action": "job.run_sync_", "result": "failed"}
    if len(failing) == 1:
        mp_link = {"action": "job.run_sync_marketplace", "q": failing[0].id}
    market = HealthField(
        "marketplaces",
        "Marketplace syncs",
        mp_status,
        f"{len(failing)} failing" if failing else f"{len(marketplaces)} ok",
        mp_detail,
        mp_link,
        {"failing": [{"id": m.id, "name": m.name, "error": m.last_error} for m in failing], "total": len(marketplaces)},
    )
    return [tables, market]


def usage_field(now: datetime) -> list[HealthField]:
    """Uploaded transcripts waiting for the usage processor or the failure scan, and parked files."""
    with state_store().read() as con:
        waiting = len(telemetry_model.pending_files(con, PROCESSOR_VERSION))
        unscanned = len(findings_model.files_to_scan(con, SCANNER_VERSION, now, limit=USAGE_BACKLOG_YELLOW + 1))
        parked = telemetry_model.list_parked(con, limit=1000)
    if parked:
        status = YELLOW
        detail = (
            f"{len(parked)} session files failed three times and are parked (see /admin/usage): {parked[0].last_error}"
        )
    elif max(waiting, unscanned) > USAGE_BACKLOG_YELLOW:
        status, detail = YELLOW, f"{waiting} files wait for processing and {unscanned} for the failure scan."
    else:
        status, detail = GREEN, f"{waiting} files wait for processing, {unscanned} for the failure scan; none parked."
    return [
        HealthField(
            "usage",
            "Session processing",
            status,
            f"{waiting} waiting · {len(parked)} parked",
            detail,
            {"action": "job.run_process_sessions", "since": "24h"},
            {"waiting": waiting, "unscanned": unscanned, "parked": len(parked)},
        )
    ]


def active_users_field(now: datetime) -> list[HealthField]:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    with state_store().read() as con:
        count = audit_model.count_active_users(con, since=midnight)
    return [
        HealthField(
            "active_users",
            "Active users today",
            GREEN,
            str(count),
            f"{count} {'user' if count == 1 else 'users'} active since midnight UTC.",
            {"since": midnight.isoformat()},
            {"active_users": count, "since": midnight.isoformat()},
        )
    ]


# Checks in display order; another area appends with register_health_check.
HEALTH_CHECKS: list[HealthCheck] = [
    cron_field,
    periodic_fields,
    queue_fields,
    sync_fields,
    usage_field,
    active_users_field,
]


def register_health_check(check: HealthCheck) -> None:
    """Add ``check(now) -> [HealthField]`` to the pulse (once; at app set-up)."""
    if check not in HEALTH_CHECKS:
        HEALTH_CHECKS.append(check)


# -- the pulse -------------------------------------------------------------------------------------


def summary(fields: list[HealthField]) -> tuple[str, str]:
    """The worst colour and one sentence: what is red, then what is yellow."""
    worst = max((f.status for f in fields), key=SEVERITY.__getitem__, default=GREEN)
    red = [f for f in fields if f.status == RED]
    yellow = [f for f in fields if f.status == YELLOW]
    if not red and not yellow:
        return GREEN, f"All {len(fields)} checks are green."
    parts = []
    if red:
        parts.append(f"{len(red)} red ({', '.join(f.label for f in red)})")
    if yellow:
        parts.append(f"{len(yellow)} yellow ({', '.join(f.label for f in yellow)})")
    return worst, " and ".join(parts) + f"; {len(fields) - len(red) - len(yellow)} green."


def compute_health(now: datetime | None = None) -> HealthPulse:
    """The pulse as of ``now`` (naive UTC; the current time by default), uncached."""
    now = now or utcnow()
    fields: list[HealthField] = []
    for check in HEALTH_CHECKS:
        fields.extend(check(now))
    status, sentence = summary(fields)
    return HealthPulse(status, sentence, now, fields)


def health_pulse(*, refresh: bool = False) -> HealthPulse:
    """The pulse computed at most :data:`CACHE_SECONDS` ago by any process (``refresh``: now)."""
    cache = shared_cache()
    if not refresh:
        cached = cache.get(CACHE_KEY)
        if isinstance(cached, dict):
            return HealthPulse.from_dict(cached)
    pulse = compute_health()
    cache.set(CACHE_KEY, pulse.to_dict(), CACHE_SECONDS)
    return pulse

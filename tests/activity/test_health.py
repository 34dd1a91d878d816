"""The health pulse: colours from seeded audit, sync and job rows under a frozen clock, the 30 s
shared cache, no audit for polling, and the real processes: a stopped ``worker.py --cron`` turns
the scheduler red after 3 minutes, a job failing on a real worker shows in failed jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta

from flask import Flask

from agnes.cache import shared_cache
from agnes.jobs.health import CACHE_KEY, compute_health, health_pulse
from agnes.jobs.schedule import HEARTBEAT_KEY, last_heartbeat
from tests.activity.conftest import audit_count, seed_audit, seed_marketplace, seed_sync
from tests.conftest import ROOT, bearer
from tests.jobs.test_worker_process import worker_env

# The frozen clock of these tests: a Tuesday, mid-morning UTC.
NOW = datetime(2026, 5, 12, 10, 0, 0)


def _status(pulse, key: str) -> str:  # type: ignore[no-untyped-def]
    return next(f.status for f in pulse.fields if f.key == key)


def _field(pulse, key: str):  # type: ignore[no-untyped-def]
    return next(f for f in pulse.fields if f.key == key)


def _beat(at: datetime, started: datetime | None = None) -> None:
    shared_cache().set(
        HEARTBEAT_KEY, {"at": at.isoformat(), "kind": "rq-cron", "pid": 1, "started": (started or at).isoformat()}
    )


def test_colours_from_seeded_rows_under_a_frozen_clock(app: Flask) -> None:
    _beat(NOW - timedelta(seconds=20), started=NOW - timedelta(days=3))
    # table-syncs (every minute) ran 30 s ago; prune-magic-links (hourly at :17) failed;
    # prune-marketplace-caches (hourly at :41) last ran three hours ago; the daily jobs ran at night.
    seed_audit(
        NOW - timedelta(seconds=30), "job.run_due_table_syncs", resource="job:periodic:table-syncs", result="finished"
    )
    seed_audit(
        NOW - timedelta(minutes=43),
        "job.run_prune_magic_links",
        resource="job:periodic_3a_prune-magic-links",
        result="failed",
        params={"error": "disk full"},
    )
    seed_audit(
        NOW - timedelta(hours=3, minutes=18),
        "job.run_prune_marketplace_caches",
        resource="job:periodic:prune-marketplace-caches",
        result="finished",
    )
    seed_audit(
        NOW - timedelta(hours=7),
        "job.run_sync_all_marketplaces",
        resource="job:periodic:sync-all-marketplaces",
        result="finished",
    )
    seed_audit(
        NOW - timedelta(hours=7, minutes=30),
        "job.run_google_group_sync",
        resource="job:periodic:google-group-sync",
        result="finished",
    )
    for n in range(19):
        seed_sync("orders", NOW - timedelta(hours=1, minutes=n), "ok")
    seed_sync("orders", NOW - timedelta(hours=2), "failed")
    seed_sync("orders", NOW - timedelta(hours=30), "failed")  # outside the 24 h window
    seed_marketplace("acme")
    seed_marketplace("broken", error="repository not found")
    seed_audit(NOW - timedelta(hours=2), "group.create", user_id="u1")
    seed_audit(NOW - timedelta(hours=1), "group.update", user_id="u2")
    seed_audit(NOW - timedelta(hours=11), "group.update", user_id="u3")  # yesterday

    pulse = compute_health(NOW)
    assert _status(pulse, "cron") == "green"
    assert _status(pulse, "periodic:table-syncs") == "green"
    failed = _field(pulse, "periodic:prune-magic-links")
    assert failed.status == "red" and "disk full" in failed.detail
    assert failed.link["action"] == "job.run_prune_magic_links"
    assert _status(pulse, "periodic:prune-marketplace-caches") == "red"  # due 07:41 and 08:41, still nothing
    assert _status(pulse, "periodic:sync-all-marketplaces") == "green"
    tables = _field(pulse, "table_syncs")
    assert (tables.status, tables.data) == ("yellow", {"ok": 19, "failed": 1})  # 95 % ok
    assert tables.link == {"action": "job.run_sync_table", "since": "24h", "result": "failed"}
    markets = _field(pulse, "marketplaces")
    assert markets.status == "yellow" and "Broken (repository not found)" in markets.detail
    assert _field(pulse, "active_users").data["active_users"] == 2
    assert pulse.status == "red"
    assert pulse.sentence.startswith("2 red (") and "Delete expired sign-in links" in pulse.sentence

    # One more failed sync drops the share under 95 %; at 08:10 the job was one run (07:41) overdue.
    seed_sync("orders", NOW - timedelta(hours=3), "failed")
    later = compute_health(NOW)
    assert _status(later, "table_syncs") == "red"
    assert (
        _status(compute_health(NOW - timedelta(hours=1, minutes=50)), "periodic:prune-marketplace-caches") == "yellow"
    )


def test_scheduler_turns_red_three_minutes_after_its_last_heartbeat(app: Flask) -> None:
    assert _status(compute_health(NOW), "cron") == "red"  # never seen
    _beat(NOW)
    assert _status(compute_health(NOW + timedelta(seconds=60)), "cron") == "green"
    assert _status(compute_health(NOW + timedelta(seconds=120)), "cron") == "yellow"
    assert _status(compute_health(NOW + timedelta(seconds=181)), "cron") == "red"


def test_a_job_that_never_ran_is_yellow_only_once_it_was_due(app: Flask) -> None:
    _beat(NOW, started=NOW - timedelta(minutes=10))
    pulse = compute_health(NOW)
    assert _status(pulse, "periodic:table-syncs") == "yellow"  # every minute: due 9 minutes ago
    assert _status(pulse, "periodic:sync-all-marketplaces") == "green"  # first due at 03:00 tomorrow
    assert "first run is due at 2026-05-13 03:00" in _field(pulse, "periodic:sync-all-marketplaces").detail


def test_embedded_queue_reports_depth_workers_and_failures(app: Flask) -> None:
    from agnes.jobs import enqueue
    from tests.jobs.conftest import run_always_fails

    enqueue(run_always_fails)
    app.extensions["agnes_jobs"].wait_idle()
    from agnes.models import utcnow

    pulse = compute_health(utcnow())
    queue = _field(pulse, "queue")
    assert queue.data["backend"] == "embedded" and queue.data["workers"] == 2 and queue.status == "green"
    failed = _field(pulse, "failed_jobs")
    assert (failed.status, failed.value) == ("yellow", "1")


def test_the_pulse_is_cached_30_s_and_polling_is_not_audited(app: Flask, client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = bearer(auth.token("admin@example.com", admin=True))
    before = audit_count()
    first = client.get("/api/admin/activity/health", headers=headers).get_json()
    seed_marketplace("broken", error="gone")  # would change the pulse, but the cached one is served
    second = client.get("/api/admin/activity/health", headers=headers).get_json()
    assert first["checked_at"] == second["checked_at"]
    assert next(f for f in second["fields"] if f["key"] == "marketplaces")["status"] == "green"
    assert audit_count() == before
    assert all(f["timeline"].startswith("/admin/activity") for f in second["fields"])
    assert health_pulse(refresh=True).checked_at.isoformat() != first["checked_at"]


def test_the_cache_lives_in_redis_with_a_30_s_ttl(rq_app: Flask, redis_conn) -> None:  # type: ignore[no-untyped-def]
    pulse = health_pulse()
    ttl = redis_conn.pttl(f"agnes:cache:{CACHE_KEY}")
    assert 0 < ttl <= 30_000
    assert health_pulse().checked_at == pulse.checked_at


def test_a_stopped_cron_process_turns_the_scheduler_red(rq_app: Flask, redis_conn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "cron.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "worker.py", "--cron"],
            cwd=ROOT,
            env=worker_env(rq_app, AGNES_JOB_HEARTBEAT="2"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while last_heartbeat() is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        first = last_heartbeat()
        assert first is not None and first.kind == "rq-cron", log.read_text()
        while (beat := last_heartbeat()) is not None and beat.at == first.at and time.monotonic() < deadline:
            time.sleep(0.2)
        assert beat is not None and beat.at > first.at and beat.started == first.started  # it keeps ticking
    finally:
        proc.terminate()
        proc.wait(30)
    stopped = last_heartbeat()
    assert stopped is not None
    assert _status(compute_health(stopped.at + timedelta(seconds=30)), "cron") == "green"
    red = compute_health(stopped.at + timedelta(minutes=3, seconds=1))
    assert _status(red, "cron") == "red" and red.status == "red"


def test_a_job_failing_on_a_real_worker_shows_in_failed_jobs(rq_app: Flask, redis_conn) -> None:  # type: ignore[no-untyped-def]
    from agnes.jobs import enqueue
    from agnes.models import utcnow
    from tests.jobs.conftest import run_always_fails

    enqueue(run_always_fails)
    queued = _field(compute_health(utcnow()), "queue")
    assert queued.data["depth"] == 1 and queued.data["oldest_description"] == "always fails"
    assert queued.data["workers"] == 0 and queued.status == "red"  # jobs wait and nobody works
    proc = subprocess.run(
        [sys.executable, "worker.py", "--burst", "--name", f"agnes-health-{os.getpid()}"],
        cwd=ROOT,
        env=worker_env(rq_app),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    pulse = compute_health(utcnow())
    assert _field(pulse, "failed_jobs").data["failed"] == 1
    assert _field(pulse, "queue").data["depth"] == 0
    # Its audit row is on the timeline the field links to.
    assert audit_count("job.run_always_fails") == 1


def test_parked_session_files_turn_session_processing_yellow(app: Flask) -> None:
    from agnes.state import state_store
    from agnes.telemetry.parser import PROCESSOR_VERSION

    assert _status(compute_health(NOW), "usage") == "green"
    with state_store().write() as con:
        con.execute("INSERT INTO session_files VALUES ('u1/s.jsonl', 'u1', 's', 'main', 10, 'abc', ?, ?)", [NOW, NOW])
        con.execute(
            "INSERT INTO usage_file_state (path, sha256, processor_version, processed_at, attempts, last_error, parked)"
            " VALUES ('u1/s.jsonl', 'abc', ?, ?, 3, 'not a transcript', true)",
            [PROCESSOR_VERSION, NOW],
        )
    usage = _field(compute_health(NOW), "usage")
    assert usage.status == "yellow" and "not a transcript" in usage.detail
    assert usage.data == {"waiting": 0, "unscanned": 1, "parked": 1}

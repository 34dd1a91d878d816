"""Table schedules (every / daily / cron) and the periodic tick that enqueues due syncs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agnes.data.schedules import parse_schedule
from agnes.errors import Invalid
from tests.data.conftest import penguins_fields, register

NOW = datetime(2026, 3, 10, 12, 0)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("every 15m", "every 15m"),
        ("Every 2 hours", "every 2h"),
        ("every 1d", "every 1d"),
        ("daily 3:00", "daily 03:00"),
        ("daily 15:00, 03:30", "daily 03:30,15:00"),
        ("*/20 * * * *", "*/20 * * * *"),
    ],
)
def test_parse_and_normalize(text, normalized):
    assert parse_schedule(text).text == normalized


@pytest.mark.parametrize("text", ["sometimes", "every 0m", "every 2m", "daily 25:00", "* * *", "every -5m"])
def test_invalid_schedules_name_the_field(text):
    with pytest.raises(Invalid) as bad:
        parse_schedule(text)
    assert bad.value.field == "schedule"


def test_due_rules():
    every = parse_schedule("every 15m")
    assert every.is_due(None, NOW)
    assert not every.is_due(NOW - timedelta(minutes=10), NOW)
    assert every.is_due(NOW - timedelta(minutes=15), NOW)
    daily = parse_schedule("daily 03:00")
    assert daily.is_due(NOW - timedelta(days=1), NOW)  # 03:00 today passed since yesterday noon
    assert not daily.is_due(NOW.replace(hour=3, minute=1), NOW)
    assert daily.next_run(NOW.replace(hour=3, minute=1), NOW) == datetime(2026, 3, 11, 3, 0)
    cron = parse_schedule("30 * * * *")
    assert cron.is_due(NOW - timedelta(minutes=45), NOW)  # 11:30 passed
    assert not cron.is_due(NOW - timedelta(minutes=20), NOW)  # last run 11:40, next 12:30
    assert cron.next_run(NOW - timedelta(minutes=20), NOW) == datetime(2026, 3, 10, 12, 30)


def test_tick_enqueues_only_due_scheduled_tables_once(rq_app, folder):
    from agnes.data.sync import due_table_ids
    from agnes.jobs.tables import run_due_table_syncs
    from agnes.models import tables
    from agnes.state import state_store
    from tests.conftest import run_rq_jobs

    register(penguins_fields(folder, schedule="every 15m"))
    register({"name": "stocks", "source_type": "csv", "source_spec": {"location": str(folder / "stocks.csv")}})
    assert run_due_table_syncs() == ["penguins"]
    assert run_due_table_syncs() == ["penguins"]  # still due, but the queued job is reused (one in flight)
    backend = rq_app.extensions["agnes_jobs"]
    assert backend.queue.count == 1
    run_rq_jobs(rq_app)
    with state_store().read() as con:
        assert tables.get_sync_state(con, "penguins").status == "ok"
        assert tables.get_sync_state(con, "stocks") is None
    assert due_table_ids() == []
    assert due_table_ids(tables.utcnow() + timedelta(minutes=16)) == ["penguins"]


def test_the_tick_is_a_periodic_job():
    from agnes.jobs.schedule import PERIODIC, resolve

    entry = next(p for p in PERIODIC if p.name == "table-syncs")
    assert entry.cron == "* * * * *" and resolve(entry.target).__name__ == "run_due_table_syncs"


# -- schedules: a cron expression that never fires must not stop every other table --------------


def test_cron_that_never_fires_is_refused_and_a_stored_one_does_not_stop_the_tick(app, folder):
    from agnes.data.sync import due_table_ids
    from agnes.jobs.tables import start_syncs
    from agnes.models import tables, utcnow
    from agnes.state import state_store

    with pytest.raises(Invalid):
        parse_schedule("0 0 31 2 *")  # February 31st
    with pytest.raises(Invalid):
        parse_schedule("every 100000000000000000000d")
    assert parse_schedule("0 0 29 2 *") is not None  # leap days exist

    register(penguins_fields(folder, schedule="every 15m"))
    register(
        {
            "name": "stocks",
            "source_type": "csv",
            "schedule": "every 15m",
            "source_spec": {"location": str(folder / "stocks.csv")},
        }
    )
    long_ago = utcnow() - timedelta(days=2)
    with state_store().write() as con:  # as if stored before the rule, and attempted once since
        con.execute("UPDATE table_registry SET schedule = '0 0 31 2 *' WHERE id = 'stocks'")
        for table_id in ("penguins", "stocks"):
            tables.record_sync(con, table_id, status="failed", started_at=long_ago, error="x")
    assert due_table_ids() == ["penguins"]
    jobs, skipped = start_syncs(None, actor_id=None)
    assert [j.id for j in jobs] == ["sync-table:penguins"]
    assert skipped == ["stocks"]

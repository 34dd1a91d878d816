"""The figures Most Popular and the plugin pages show (agnes/telemetry/popularity.py), from events
spread over the last five weeks: windows, the 30-day sparkline and the week-on-week trend."""

from __future__ import annotations

from datetime import datetime, timedelta

from agnes.models import telemetry, utcnow
from agnes.state import state_store
from agnes.telemetry.popularity import SPARK_DAYS, build_index

PARENT = "acme/handgemacht"


def _event(con, user: str, at: datetime, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        con.execute(
            "INSERT INTO usage_events (path, user_id, session_id, line_no, occurred_at, event_type, item_type,"
            " tool_name, name, item_name, source, parent, parent_name, prefix, is_error, is_sidechain, model,"
            " processor_version) VALUES (?, ?, 's', ?, ?, 'skill', 'skill', 'Skill', 'handgemacht:commit',"
            " 'commit', 'curated', ?, 'handgemacht', 'handgemacht', ?, false, '', 1)",
            [f"{user}/s.jsonl", user, i, at, PARENT, i == 0 and user == "u2"],
        )


def test_trend_compares_the_last_week_with_the_one_before_and_the_sparkline_spans_30_days(app) -> None:  # type: ignore[no-untyped-def]
    now = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    today = now.date()
    with state_store().write() as con:
        _event(con, "u1", now - timedelta(days=20), 5)  # in the 30 days, not in either week
        _event(con, "u1", now - timedelta(days=10), 2)  # the week before
        _event(con, "u2", now - timedelta(days=9), 2)
        _event(con, "u1", now - timedelta(days=2), 6)  # the last week
        _event(con, "u3", now - timedelta(days=40), 9)  # older than every window
        telemetry.refresh_daily(con, telemetry.all_event_days(con))
        telemetry.refresh_windows(con, now)
    with state_store().read() as con:
        index = build_index(con, today)
    plugin = index.plugin(PARENT)
    item = index.item(PARENT, "skill", "commit")
    for usage in (plugin, item):
        assert (usage.calls_7d, usage.prior_7d_calls, usage.trend_pct) == (6, 4, 50)
        assert (usage.calls_30d, usage.users_30d, usage.users_7d, usage.errors_30d) == (15, 2, 1, 1)
        assert len(usage.daily) == SPARK_DAYS and sum(usage.daily) == 15
        assert usage.daily[SPARK_DAYS - 1 - 20] == 5 and usage.daily[SPARK_DAYS - 1 - 2] == 6

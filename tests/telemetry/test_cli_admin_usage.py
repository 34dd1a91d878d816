"""``agnes admin usage export|prune|reprocess`` and ``agnes admin ask`` against a live server."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from agnes.state import state_store
from tests.conftest import cli_env, run_cli
from tests.telemetry.test_admin_usage import QUESTIONS, StubMessages, loaded  # noqa: F401 - fixtures

__all__ = ["StubMessages"]


def test_admin_usage_commands(app, live_server, auth, loaded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    import threading
    from http.server import ThreadingHTTPServer

    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path / "home")
    out = tmp_path / "events.parquet"
    exported = run_cli(["admin", "usage", "export", "--format", "parquet", "--since", "7d", "--out", str(out)], env)
    assert exported.returncode == 0, exported.stderr
    with state_store().read() as con:
        recent = con.execute(
            "SELECT count(*) FROM usage_events WHERE occurred_at >= now()::TIMESTAMP - INTERVAL 7 DAY"
        ).fetchone()[0]
    assert pq.read_table(out).num_rows == recent > 0
    csv_out = run_cli(["admin", "usage", "export", "--what", "sessions"], env)
    assert csv_out.returncode == 0 and csv_out.stdout.splitlines()[0].startswith("path,user_id,session_id")
    pruned = run_cli(["admin", "usage", "prune", "--json"], env)
    assert json.loads(pruned.stdout)["status"] == "skipped"
    reprocessed = run_cli(["admin", "usage", "reprocess", "--wait"], env)
    assert reprocessed.returncode == 0 and "Reprocessed 6 files" in reprocessed.stdout, reprocessed.stderr

    server = ThreadingHTTPServer(("127.0.0.1", 0), StubMessages)
    server.requests = []  # type: ignore[attr-defined]
    server.reply = (200, json.dumps({"sql": QUESTIONS[1][1], "rationale": "Sessions per person."}))  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config.update(ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=f"http://127.0.0.1:{server.server_port}")
    try:
        answer = run_cli(["admin", "ask", QUESTIONS[1][0]], env)
        assert answer.returncode == 0, answer.stderr
        assert "FROM usage_session_summary" in answer.stdout and "analyst@example.com" in answer.stdout
        server.reply = (200, json.dumps({"sql": "DROP TABLE usage_events"}))  # type: ignore[attr-defined]
        refused = run_cli(["admin", "ask", "Delete everything", "--json"], env)
        assert refused.returncode == 1 and json.loads(refused.stdout)["error"] == "sql_rejected"
    finally:
        server.shutdown()
        server.server_close()

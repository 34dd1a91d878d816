"""The OTLP spool: with a flush interval a request is answered once its events are on disk, and
the drainer commits them; a file committed twice (a crash between commit and removal) stores its
events once; an unreadable file is set aside; a spool too far behind refuses with 503."""

from __future__ import annotations

import shutil

import pytest

from tests.claude_code.conftest import log_request, skill_events
from tests.conftest import bearer

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def analyst(app, auth, fleet):  # type: ignore[no-untyped-def]
    app.config["AGNES_OTLP_FLUSH_MS"] = 60_000  # the drainer waits: the test drains by hand
    return auth.token("ana@example.com")


def _stored() -> tuple[int, int]:
    from agnes.state import state_store

    with state_store().read() as con:
        events = con.execute("SELECT count(*) FROM otel_events").fetchone()[0]
        loads = con.execute("SELECT count(*) FROM claude_code_plugin_loads").fetchone()[0]
    return int(events), int(loads)


def test_spooled_events_are_committed_by_a_drain_once(app, client, analyst, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agnes.claude_code import spool as spool_module

    body = log_request(skill_events()).SerializeToString()
    assert client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst)}).status_code == 200
    spool = spool_module.spool()
    files = sorted(spool.dir.glob("*.arrow"))
    assert len(files) == 1 and _stored() == (0, 0)  # on disk, not yet in the state store
    kept = tmp_path / "copy.arrow"
    shutil.copy(files[0], kept)
    assert spool.drain(blocking=True) == 1
    assert _stored() == (5, 1) and not list(spool.dir.glob("*.arrow"))
    # A crash after the commit left the file behind: draining it again stores nothing twice.
    shutil.copy(kept, files[0])
    assert spool.drain(blocking=True) == 1 and _stored() == (5, 1)


def test_an_unreadable_file_is_set_aside_and_the_others_go_in(app, client, analyst) -> None:  # type: ignore[no-untyped-def]
    from agnes.claude_code import spool as spool_module

    spool = spool_module.spool()
    (spool.dir / "00000000000000000000-1-broken.arrow").write_bytes(b"not arrow")
    body = log_request(skill_events()).SerializeToString()
    assert client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst)}).status_code == 200
    assert spool.drain(blocking=True) == 1
    assert _stored() == (5, 1) and [p.name for p in (spool.dir / "bad").iterdir()] == [
        "00000000000000000000-1-broken.arrow"
    ]


def test_a_spool_too_far_behind_refuses_and_writes_nothing(app, client, analyst, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from agnes.claude_code import spool as spool_module

    spool = spool_module.spool()
    monkeypatch.setattr(spool, "backlog", spool_module.MAX_BACKLOG + 1)
    body = log_request(skill_events()).SerializeToString()
    answer = client.post("/v1/logs", data=body, headers={**PROTOBUF, **bearer(analyst)})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert not list(spool.dir.glob("*.arrow"))

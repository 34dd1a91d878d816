"""Hostile bodies to every mutating JSON endpoint (issue 10): wrong types, lone surrogates, NUL,
1 MB strings, deep nesting and broken JSON never answer 5xx, every accepted change writes
exactly one audit row, in the change's own unit of work, and every row reads back on the timeline."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask, url_for

from agnes.state import state_store
from tests.access.test_authz_matrix import ADMIN, RULES, SESSION, World, app_routes, make_callers

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# A 1 MB string: bigger than any text field accepts.
HUGE = "x" * 1_000_000
# Values put in each field of a valid body, one at a time.
FIELD_VALUES: tuple[Any, ...] = (12345, ["x"], {"a": 1}, None, True, "\ud800", "a\x00b", HUGE)
# Whole bodies that are not what any endpoint takes.
RAW_BODIES: tuple[bytes, ...] = (b"[]", b'"text"', b"7", b"null", b"{", b"[" * 100_000, b"\xff\xfe{}")


def _bodies(valid: dict[str, Any]) -> list[bytes]:
    """Every hostile variant of ``valid``: one field changed at a time, then whole bodies."""
    bodies = []
    for key in [*valid, "name"]:
        for value in FIELD_VALUES:
            bodies.append(json.dumps({**valid, key: value}).encode())
    return [*bodies, *RAW_BODIES]


def _audit_rows(correlation_id: str) -> int:
    with state_store().read() as con:
        return con.execute("SELECT count(*) FROM audit_log WHERE correlation_id = ?", [correlation_id]).fetchone()[0]


@pytest.fixture
def world(app: Flask, auth) -> World:  # type: ignore[no-untyped-def]
    return World(app, auth.user("admin@example.com", admin=True), auth.user("analyst@example.com"))


def _endpoints(app: Flask) -> list[tuple[str, str]]:
    return sorted(
        (endpoint, method)
        for endpoint, method, rule in app_routes(app)
        if method in MUTATING and rule.startswith("/api/") and RULES[endpoint].access in (ADMIN, SESSION, "login")
    )


def test_hostile_bodies_never_answer_5xx_and_accepted_changes_audit_once(app: Flask, world: World) -> None:
    callers = make_callers(app, world)
    failures: list[str] = []
    sent = 0
    for endpoint, method in _endpoints(app):
        rule = RULES[endpoint]
        caller = callers["admin_session" if rule.access == SESSION else "admin_pat"]
        valid = rule.body(world, caller) if rule.body else {}
        for index, body in enumerate(_bodies(valid)):
            values = rule.values(world, caller) if rule.values else {}
            with app.test_request_context():
                path = url_for(endpoint, **values)
            client = app.test_client()
            request_id = f"fuzz-{endpoint}-{index}"
            headers = {"Content-Type": "application/json", "X-Request-ID": request_id[:64]}
            if caller.token:
                headers["Authorization"] = f"Bearer {caller.token}"
            else:
                with client.session_transaction() as sess:
                    sess.update(caller.session or {})
                headers["X-CSRFToken"] = caller.csrf or ""
            response = client.open(path, method=method, data=body, headers=headers)
            sent += 1
            status = response.status_code
            shown = body[:60]
            if status >= 500:
                failures.append(f"{method} {path} {shown!r}: {status} {response.data[:200]!r}")
            elif status < 400 and _audit_rows(request_id[:64]) != 1:
                failures.append(
                    f"{method} {path} {shown!r}: accepted ({status}) with {_audit_rows(request_id[:64])} rows"
                )
            response.close()
    assert sent > 500
    assert failures == [], "\n".join(failures[:40])
    # Every row those requests wrote (accepted or refused) reads back on the timeline API, and the
    # Changes tab reads their registry changes: no stored value breaks either.
    admin = {"Authorization": f"Bearer {callers['admin_pat'].token}"}
    with state_store().read() as con:
        stored = {r[0] for r in con.execute("SELECT id FROM audit_log WHERE action <> 'activity.read'").fetchall()}
    for path in ("/api/admin/activity", "/api/admin/activity/changes"):
        shown, cursor = set(), None
        while True:
            query = {"since": "1h", "limit": 200, **({"cursor": cursor} if cursor else {})}
            answer = app.test_client().get(path, query_string=query, headers=admin)
            assert answer.status_code == 200, (path, answer.data[:300])
            shown |= {row["id"] for row in answer.get_json()["rows"]}
            cursor = answer.get_json()["next_cursor"]
            if not cursor:
                break
        if path == "/api/admin/activity":
            assert stored - shown == set()
        else:
            assert len(shown) > 10  # the accepted creations, updates and removals of the registries


def test_deep_json_is_a_400_naming_the_rule(client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {auth.token('admin@example.com', admin=True)}"}
    response = client.post(
        "/api/admin/groups", data=b"[" * 100_000, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json" and "nested" in response.get_json()["message"]


def test_a_lone_surrogate_in_a_stored_field_is_a_400_naming_it(client, auth) -> None:  # type: ignore[no-untyped-def]
    headers = {
        "Authorization": f"Bearer {auth.token('admin@example.com', admin=True)}",
        "Content-Type": "application/json",
    }
    response = client.post("/api/admin/groups", data=b'{"name": "ok", "description": "\\ud800"}', headers=headers)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid_text",
        "message": "description holds characters that cannot be stored (NUL or a lone surrogate).",
        "field": "description",
    }

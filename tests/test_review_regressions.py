"""Regression tests for defects found in the cross-feature review (one section per defect)."""

from __future__ import annotations

import json

from tests.conftest import bearer

# -- audit: a client body with keys named like describe()'s own arguments ----------------------


def test_patch_body_with_action_and_resource_keys_is_audited_not_500(app, client, auth):
    from agnes import people
    from agnes.state import state_store

    group = people.create_group("reviewers", actor_id=None)
    token = auth.token("boss@example.com", admin=True)
    response = client.patch(f"/api/admin/groups/{group.id}", json={"name": "renamed", "action": "x", "resource": "y"},
                            headers=bearer(token))
    assert response.status_code == 200, response.data
    assert response.get_json()["name"] == "renamed"
    with state_store().read() as con:
        row = con.execute("SELECT action, resource, params FROM audit_log WHERE action = 'group.update'").fetchone()
    assert row is not None
    assert row[1] == f"group:{group.id}"
    assert json.loads(row[2])["resource"] == "y"

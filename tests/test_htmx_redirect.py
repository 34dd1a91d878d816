"""``hx_redirect``: a plain form post gets a 303, an htmx post an empty 200 with HX-Redirect.

An XMLHttpRequest follows a 3xx by itself, so a 303 + HX-Redirect would swap the next page
into the fragment instead of navigating (found by tests/test_browser.py).
"""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import csrf_token


def test_create_group_redirects_forms_and_htmx(client: FlaskClient, auth) -> None:  # type: ignore[no-untyped-def]
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/groups")

    plain = client.post("/admin/groups", data={"name": "Plain", "csrf_token": token})
    assert plain.status_code == 303
    assert plain.location.startswith("/admin/groups/")

    htmx = client.post("/admin/groups", data={"name": "Htmx", "csrf_token": token}, headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    assert htmx.headers["HX-Redirect"].startswith("/admin/groups/")
    assert htmx.data == b""
    assert "HX-Request" in htmx.headers.get("Vary", "")
    group_id = htmx.headers["HX-Redirect"].rsplit("/", 1)[1]

    deleted = client.post(
        f"/admin/groups/{group_id}/delete", data={"csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert (deleted.status_code, deleted.headers["HX-Redirect"], deleted.data) == (200, "/admin/groups", b"")

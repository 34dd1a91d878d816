"""Admin pages for data tables (HTMX): list, register form, options fragment, table page, Sync now."""

from __future__ import annotations

from bs4 import BeautifulSoup

from tests.conftest import csrf_token
from tests.data.conftest import penguins_fields, register

HX = {"HX-Request": "true"}


def soup(response) -> BeautifulSoup:  # type: ignore[no-untyped-def]
    return BeautifulSoup(response.data, "html.parser")


def test_tables_page_and_fragment(client, auth, folder):
    register(penguins_fields(folder))
    auth.login("admin@example.com", admin=True)
    page = soup(client.get("/admin/tables"))
    assert page.find("html") and page.find(id="tables-table") and page.find(id="table-register")
    assert [tr["id"] for tr in page.select("#tables-table tbody tr")] == ["table-penguins"]
    options = {o["value"]: o.has_attr("disabled") for o in page.select("#f-source_type option")}
    assert options["keboola"] and options["bigquery"] and not options["postgres"]
    fragment = soup(client.get("/admin/tables", headers=HX))
    assert fragment.find("html") is None and fragment.find(id="tables-table")


def test_options_fragment_follows_the_source_type(client, auth):
    auth.login("admin@example.com", admin=True)
    fragment = soup(client.get("/admin/tables/options?source_type=postgres", headers=HX))
    assert fragment.find("html") is None
    names = [i["name"] for i in fragment.select("#table-options [name]")]
    assert names == ["opt_dsn_env", "opt_table", "opt_query"]
    page = soup(client.get("/admin/tables/options?source_type=sql"))
    assert page.find("html") and page.select_one("#table-options [name=opt_query]")


def test_register_from_the_form(client, auth, folder):
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/tables")
    bad = client.post(
        "/admin/tables",
        data={
            "csrf_token": token,
            "name": "penguins",
            "source_type": "csv",
            "opt_location": "",
            "opt_null_strings": "NA",
        },
        headers=HX,
    )
    assert bad.status_code == 422
    form = soup(bad)
    assert form.find("html") is None and form.find(id="table-register")
    assert form.select_one("#f-opt_location-error").text.strip() == "File path or URL is required."
    assert form.select_one("#f-name")["value"] == "penguins"
    # Several wrong fields: each shows its error at once (not only the first).
    several = client.post(
        "/admin/tables",
        data={"csrf_token": token, "name": "", "source_type": "csv", "opt_location": "", "schedule": "sometimes"},
        headers=HX,
    )
    assert several.status_code == 422
    shown = soup(several)
    for field in ("name", "schedule", "opt_location"):
        assert shown.select_one(f"#f-{field}-error"), field
    good = client.post(
        "/admin/tables",
        data={
            "csrf_token": token,
            "name": "penguins",
            "source_type": "csv",
            "opt_location": str(folder / "penguins.csv"),
            "opt_null_strings": "NA",
            "opt_header": "on",
            "opt_rename": "sex = gender",
            "schedule": "every 1h",
        },
    )
    assert good.status_code == 303 and good.headers["Location"].endswith("/admin/tables/penguins")
    page = soup(client.get("/admin/tables/penguins"))
    assert page.select_one("#table-page")["data-table-id"] == "penguins"
    assert page.select_one("#f-opt_rename").text == "sex = gender"
    assert page.select_one("#f-opt_null_strings")["value"] == "NA"


def test_sync_now_shows_live_status_and_history(app, client, auth, folder):
    register(penguins_fields(folder))
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/tables/penguins")
    started = client.post("/admin/tables/penguins/sync", data={"csrf_token": token}, headers=HX)
    status = soup(started)
    assert started.status_code == 200 and status.find("html") is None
    assert status.find(id="job-status-sync-table-penguins")
    app.extensions["agnes_jobs"].wait_idle()
    page = soup(client.get("/admin/tables/penguins"))
    assert page.select_one("#job-status-sync-table-penguins")["data-state"] == "finished"
    assert "344 rows" in page.select_one("#table-last-sync").text
    assert [tr["class"] for tr in page.select("#table-history tbody tr")] == [["run-ok"]]
    fragment = soup(client.get("/admin/tables/penguins", headers=HX))
    assert fragment.find("html") is None and fragment.find(id="table-sync")
    plain = client.post("/admin/tables/penguins/sync", data={"csrf_token": token})
    assert plain.status_code == 303
    app.extensions["agnes_jobs"].wait_idle()


def test_edit_and_unregister(client, auth, folder):
    register(penguins_fields(folder))
    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/tables/penguins")
    bad = client.post(
        "/admin/tables/penguins",
        data={
            "csrf_token": token,
            "name": "penguins",
            "source_type": "csv",
            "opt_location": str(folder / "penguins.csv"),
            "schedule": "whenever",
        },
    )
    assert bad.status_code == 422 and soup(bad).select_one("#f-schedule-error")
    ok = client.post(
        "/admin/tables/penguins",
        data={
            "csrf_token": token,
            "name": "Penguins",
            "source_type": "csv",
            "opt_location": str(folder / "penguins.csv"),
            "schedule": "daily 4:30",
            "query_mode": "local",
        },
    )
    assert ok.status_code == 303
    page = soup(client.get("/admin/tables"))
    assert page.select_one("#table-penguins").find_all("td")[3].text.strip() == "daily 04:30"
    gone = client.post("/admin/tables/penguins/delete", data={"csrf_token": token}, headers=HX)
    assert gone.headers["HX-Redirect"].endswith("/admin/tables")
    assert soup(client.get("/admin/tables")).select("#tables-table tbody tr td.empty")

"""Data on the web (issue 15 item 6): ``/data`` lists the tables a user may query (analysts: granted
ones; admins: all, with sync state and Sync now), searchable as you type; ``/data/<id>`` shows the
schema with null counts, the first 50 rows (escaped) read through the server's DuckDB, and the
``agnes pull`` / ``agnes query`` lines. JSON twins come from the same page data.
"""

from __future__ import annotations

from bs4 import BeautifulSoup

from agnes.data.sync import sync_table
from tests.conftest import bearer
from tests.data.conftest import penguins_fields, register

HX = {"HX-Request": "true"}
ANALYST = "analyst@example.com"


def _setup(app, auth, folder):  # type: ignore[no-untyped-def]
    from agnes import people

    register(penguins_fields(folder))
    (folder / "notes.csv").write_text('id,note\n1,"<script>alert(1)</script>"\n2,\n')
    register(
        {
            "name": "notes",
            "description": "Free text",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "notes.csv")},
        }
    )
    register(
        {
            "name": "secret",
            "description": "Not for analysts",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "notes.csv")},
        }
    )
    for table in ("penguins", "notes", "secret"):
        sync_table(table)
    admin = auth.user("admin@example.com", admin=True)
    auth.user(ANALYST)
    for table in ("penguins", "notes"):
        people.create_grant("everyone", "table", table, actor_id=admin)


def test_an_analyst_sees_only_granted_tables_and_their_contents(app, client, auth, folder):  # type: ignore[no-untyped-def]
    _setup(app, auth, folder)
    auth.login(ANALYST)
    page = BeautifulSoup(client.get("/data").data, "html.parser")
    assert [tr["data-table"] for tr in page.select("#data-table tbody tr[data-table]")] == ["notes", "penguins"]
    penguins = page.select_one("#data-penguins").get_text(" ", strip=True)
    assert "344" in penguins and "local" in penguins and "KiB" in penguins
    assert page.select_one("#data-table th:-soup-contains('Sync')") is None  # no Sync now for analysts

    # Search as you type: the fragment, over names and descriptions.
    found = BeautifulSoup(client.get("/data?q=free", headers=HX).data, "html.parser")
    assert found.find("html") is None
    assert [tr["data-table"] for tr in found.select("tr[data-table]")] == ["notes"]
    assert "1 of 2 tables" in found.select_one("#data-count").get_text()

    # The table page: schema with nulls, first rows escaped, the commands.
    response = client.get("/data/notes")
    assert response.status_code == 200
    table = BeautifulSoup(response.data, "html.parser")
    schema = [[td.get_text(strip=True) for td in tr.select("td")] for tr in table.select("#data-schema tbody tr")]
    assert schema == [["id", "BIGINT", "0"], ["note", "VARCHAR", "1"]]
    cells = [td.get_text(strip=True) for td in table.select("#data-preview tbody td")]
    assert cells == ["1", "<script>alert(1)</script>", "2", "NULL"]
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert table.select_one("#data-commands code").get_text().splitlines() == [
        "agnes pull --table notes",
        'agnes query "SELECT * FROM notes LIMIT 10"',
    ]
    penguins = BeautifulSoup(client.get("/data/penguins").data, "html.parser")
    assert len(penguins.select("#data-preview tbody tr")) == 50

    # Not granted: 403 on the page and its twin, absent from the list; an unknown id is 403 too
    # for an analyst (whether a table exists is not revealed), 404 for an admin.
    assert client.get("/data/secret").status_code == 403
    assert client.get("/data/nope").status_code == 403
    analyst = bearer(auth.token(ANALYST))
    assert client.get("/api/data/secret", headers=analyst).status_code == 403
    listed = client.get("/api/data", headers=analyst).get_json()
    assert [t["id"] for t in listed["tables"]] == ["notes", "penguins"]
    twin = client.get("/api/data/notes", headers=analyst).get_json()
    assert twin["columns"] == [
        {"name": "id", "type": "BIGINT", "nulls": 0},
        {"name": "note", "type": "VARCHAR", "nulls": 1},
    ]
    assert twin["preview"]["rows"] == [["1", "<script>alert(1)</script>"], ["2", None]]


def test_an_admin_sees_every_table_with_sync_now(app, client, auth, folder):  # type: ignore[no-untyped-def]
    _setup(app, auth, folder)
    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get("/data").data, "html.parser")
    assert [tr["data-table"] for tr in page.select("tr[data-table]")] == ["notes", "penguins", "secret"]
    assert page.select_one("#data-secret form")["hx-post"] == "/admin/tables/secret/sync"
    table = BeautifulSoup(client.get("/data/secret").data, "html.parser")
    assert table.select_one("#data-sync-now") is not None
    assert client.get("/data/nope").status_code == 404
    live = table.select_one("#data-table-live")
    assert live["hx-trigger"] == "sync-table:secret from:body" and live["hx-get"] == "/data/secret"


def test_the_home_page_links_an_analyst_to_what_they_use(client, auth):  # type: ignore[no-untyped-def]
    auth.login(ANALYST)
    home = BeautifulSoup(client.get("/").data, "html.parser")
    links = {a["id"]: a["href"] for a in home.select("#home-tiles a[id]")}
    assert links == {
        "tile-marketplace": "/marketplace",
        "tile-stack": "/marketplace?tab=my",
        "tile-data": "/data",
        "tile-tokens": "/me#tokens",
    }
    steps = home.select_one("#connect-claude-code").get_text(" ", strip=True)
    assert "agnes marketplace setup" in steps and "claude plugin marketplace update agnes" in steps

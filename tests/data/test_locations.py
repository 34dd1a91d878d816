"""Table file locations: only under AGNES_DATA_SOURCE_DIRS, never the server's own files (issue 10 item 1).

Before the fix a CSV table at ``<AGNES_DATA_DIR>/state/secret_key`` registered (201) and synced
the session-signing key into a parquet file; every test here failed on that code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agnes.data import extracts
from agnes.data.sync import SyncFailed, sync_table
from agnes.models import audit as audit_model
from agnes.models import tables
from agnes.state import state_store
from tests.conftest import bearer
from tests.data.conftest import register


def server_secrets(app) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    state = Path(app.config["AGNES_DATA_DIR"]) / "state"
    (state / ".env_overlay").write_text("ACME_TOKEN=ghp_notreallyatoken\n")
    return {"secret_key": state / "secret_key", "env_overlay": state / ".env_overlay", "passwd": Path("/etc/passwd")}


def registry_ids() -> list[str]:
    with state_store().read() as con:
        return [t.id for t in tables.list_tables(con)]


def audit_count(action: str) -> int:
    with state_store().read() as con:
        return sum(1 for row in audit_model.list_audit(con, limit=1000) if row.action == action)


def targets(app, folder: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """The files a hostile admin tries: the server's secrets, and a symlink out of the allowed dir."""
    found = server_secrets(app)
    link = folder / "innocent.csv"
    link.symlink_to(found["secret_key"])
    found["symlink_out"] = link
    return found


@pytest.mark.parametrize("connector", ["csv", "json", "parquet"])
def test_file_connectors_refuse_server_files_with_422_and_write_nothing(app, client, auth, folder, connector):
    admin = bearer(auth.token("admin@example.com", admin=True))
    before = audit_count("table.register")
    for name, path in targets(app, folder).items():
        body = {"name": f"leak {name}", "source_type": connector, "source_spec": {"location": str(path)}}
        answer = client.post("/api/admin/register-table", json=body, headers=admin)
        assert answer.status_code == 422, (name, answer.json)
        assert answer.json["error"] == "location_not_allowed" and answer.json["field"] == "spec.location"
        assert "AGNES_DATA_SOURCE_DIRS" in answer.json["message"] or "data directory" in answer.json["message"]
    assert registry_ids() == []
    assert audit_count("table.register") == before
    assert not list(extracts.extracts_root(Path(app.config["AGNES_DATA_DIR"])).rglob("*.parquet"))


def test_relative_and_data_dir_paths_are_refused_and_a_listed_dir_inside_the_data_dir_is_ignored(app, client, auth):
    admin = bearer(auth.token("admin@example.com", admin=True))
    for location in ("state/secret_key", "../data/state/secret_key"):
        body = {"name": "rel", "source_type": "csv", "source_spec": {"location": location}}
        answer = client.post("/api/admin/register-table", json=body, headers=admin)
        assert answer.status_code == 422 and answer.json["field"] == "spec.location"
    app.config["AGNES_DATA_SOURCE_DIRS"] = [app.config["AGNES_DATA_DIR"]]
    body = {"name": "inside", "source_type": "csv", "source_spec": {"location": str(server_secrets(app)["secret_key"])}}
    answer = client.post("/api/admin/register-table", json=body, headers=admin)
    assert answer.status_code == 422 and "AGNES_DATA_SOURCE_DIRS" in answer.json["message"]
    assert registry_ids() == []


def test_local_files_are_off_until_a_directory_is_listed_but_urls_still_register(app, client, auth, folder):
    app.config["AGNES_DATA_SOURCE_DIRS"] = []
    admin = bearer(auth.token("admin@example.com", admin=True))
    body = {"name": "p", "source_type": "csv", "source_spec": {"location": str(folder / "penguins.csv")}}
    answer = client.post("/api/admin/register-table", json=body, headers=admin)
    assert answer.status_code == 422 and "Local files are off" in answer.json["message"]
    body = {"name": "u", "source_type": "csv", "source_spec": {"location": "https://example.com/p.csv"}}
    assert client.post("/api/admin/register-table", json=body, headers=admin).status_code == 201


def test_update_to_a_server_file_is_refused_and_the_row_keeps_its_location(app, client, auth, folder):
    admin = bearer(auth.token("admin@example.com", admin=True))
    good = str(folder / "penguins.csv")
    body = {"name": "penguins", "source_type": "csv", "source_spec": {"location": good}}
    assert client.post("/api/admin/register-table", json=body, headers=admin).status_code == 201
    for path in targets(app, folder).values():
        answer = client.put(
            "/api/admin/registry/penguins", json={"source_spec": {"location": str(path)}}, headers=admin
        )
        assert answer.status_code == 422 and answer.json["field"] == "spec.location"
    with state_store().read() as con:
        assert tables.get_table(con, "penguins").source_spec["location"] == good


def test_admin_form_shows_the_refusal_at_the_location_field(app, client, auth):
    from tests.conftest import csrf_token

    auth.login("admin@example.com", admin=True)
    token = csrf_token(client, "/admin/tables")
    form = {"csrf_token": token, "name": "leak", "source_type": "csv", "opt_location": "/etc/passwd"}
    answer = client.post("/admin/tables", data=form)
    assert answer.status_code == 422
    assert b"AGNES_DATA_SOURCE_DIRS" in answer.data
    assert registry_ids() == []


def test_a_symlink_switched_after_registration_fails_the_sync_and_publishes_nothing(app, folder):
    secrets = server_secrets(app)
    link = folder / "weather.csv"
    link.symlink_to(folder / "penguins.csv")
    register({"name": "weather", "source_type": "csv", "source_spec": {"location": str(link)}})
    assert sync_table("weather")["rows"] > 0
    published = extracts.parquet_path(Path(app.config["AGNES_DATA_DIR"]), "csv", "weather")
    before = published.read_bytes()
    for target in (secrets["secret_key"], secrets["env_overlay"], secrets["passwd"]):
        link.unlink()
        link.symlink_to(target)
        with pytest.raises(SyncFailed, match="outside the allowed directories|inside the data directory"):
            sync_table("weather")
        assert published.read_bytes() == before
    # A glob whose matches include a link out is refused as a whole.
    os.symlink(secrets["secret_key"], folder / "zz-out.csv")
    register({"name": "all", "source_type": "csv", "source_spec": {"location": str(folder / "*.csv")}})
    with pytest.raises(SyncFailed, match="outside the allowed directories"):
        sync_table("all")


def test_sql_connector_cannot_read_server_files_or_attach_them(app, client, auth, folder):
    admin = bearer(auth.token("admin@example.com", admin=True))
    found = targets(app, folder)
    for name, path in found.items():
        body = {
            "name": f"attach {name}",
            "source_type": "sql",
            "source_spec": {"query": "SELECT 1 AS x", "attach": {"other": str(path)}},
        }
        answer = client.post("/api/admin/register-table", json=body, headers=admin)
        assert answer.status_code == 422 and answer.json["field"] == "spec.attach", (name, answer.json)
    readers = {
        "secret_key": f"SELECT content FROM read_text('{found['secret_key']}')",
        "env_overlay": f"SELECT * FROM read_csv('{found['env_overlay']}', header=false)",
        "symlink_out": f"SELECT content FROM read_text('{found['symlink_out']}')",
        "passwd": "SELECT * FROM read_csv('/etc/passwd', header=false)",
        "traversal": f"SELECT content FROM read_text('{folder}/../data/state/secret_key')",
        "extension": "SELECT * FROM read_csv('https://example.com/x.csv')",
    }
    for name, query in readers.items():
        register({"name": f"q {name}", "source_type": "sql", "source_spec": {"query": query}})
        with pytest.raises(SyncFailed, match="disabled by configuration|Permission"):
            sync_table(f"q_{name}")
    assert not list(extracts.extracts_root(Path(app.config["AGNES_DATA_DIR"])).rglob("*.parquet"))
    # A query over nothing but its own values still runs in the locked-down connection.
    register({"name": "unlock", "source_type": "sql", "source_spec": {"query": "SELECT 1 AS x"}})
    assert sync_table("unlock")["rows"] == 1

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
    response = client.patch(
        f"/api/admin/groups/{group.id}", json={"name": "renamed", "action": "x", "resource": "y"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.data
    assert response.get_json()["name"] == "renamed"
    with state_store().read() as con:
        row = con.execute("SELECT action, resource, params FROM audit_log WHERE action = 'group.update'").fetchone()
    assert row is not None
    assert row[1] == f"group:{group.id}"
    assert json.loads(row[2])["resource"] == "y"


# -- wrong JSON types answer 400 naming the field, never 500 -----------------------------------


def test_wrong_types_in_group_and_table_bodies_are_400_with_the_field(app, client, auth, tmp_path):
    from agnes import people
    from tests.data_helpers import copy_tables, penguins_fields, register

    group = people.create_group("typed", actor_id=None)
    folder = copy_tables(tmp_path / "files")
    register(penguins_fields(folder))
    headers = bearer(auth.token("boss@example.com", admin=True))
    cases = [
        ("POST", "/api/admin/groups", {"name": None}, "name"),
        ("POST", "/api/admin/groups", {"name": "ok", "description": {"a": 1}}, "description"),
        ("PATCH", f"/api/admin/groups/{group.id}", {"name": 5}, "name"),
        ("PATCH", f"/api/admin/groups/{group.id}", {"description": ["x"]}, "description"),
        ("POST", "/api/admin/register-table", {**penguins_fields(folder), "id": "p2", "schedule": 15}, "schedule"),
        (
            "POST",
            "/api/admin/register-table",
            {**penguins_fields(folder), "id": "p3", "source_spec": "x.csv"},
            "source_spec",
        ),
        ("POST", "/api/marketplaces", {"slug": ["acme"], "name": "Acme", "url": "/srv/acme.git"}, "slug"),
        ("POST", "/api/marketplaces", {"slug": "acme", "name": {"en": "Acme"}, "url": "/srv/acme.git"}, "name"),
        ("POST", "/api/admin/register-table", {**penguins_fields(folder), "name": ["penguins"]}, "name"),
        ("PUT", "/api/admin/registry/penguins", {"description": 42}, "description"),
        ("PUT", "/api/admin/registry/penguins", {"source_spec": ["x.csv"]}, "source_spec"),
        ("PUT", "/api/admin/registry/penguins", {"schedule": {"every": "15m"}}, "schedule"),
        ("PUT", "/api/admin/registry/penguins", {"schedule": "every 99999999999999999999m"}, "schedule"),
    ]
    for method, path, body, field in cases:
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code == 400, (path, body, response.data)
        assert response.get_json()["field"] == field, (path, body)


# -- schedules: a cron expression that never fires must not stop every other table --------------


def test_cron_that_never_fires_is_refused_and_a_stored_one_does_not_stop_the_tick(app, tmp_path):
    from datetime import timedelta

    import pytest

    from agnes.data.schedules import parse_schedule
    from agnes.data.sync import due_table_ids
    from agnes.errors import Invalid
    from agnes.jobs.tables import start_syncs
    from agnes.models import tables, utcnow
    from agnes.state import state_store
    from tests.data_helpers import copy_tables, penguins_fields, register

    with pytest.raises(Invalid):
        parse_schedule("0 0 31 2 *")  # February 31st
    with pytest.raises(Invalid):
        parse_schedule("every 100000000000000000000d")
    assert parse_schedule("0 0 29 2 *") is not None  # leap days exist

    folder = copy_tables(tmp_path / "files")
    register(penguins_fields(folder, schedule="every 15m"))
    register(
        {
            "name": "stocks",
            "source_type": "csv",
            "schedule": "every 15m",
            "source_spec": {"location": str(folder / "stocks.csv")},
        }
    )
    long_ago = utcnow() - timedelta(days=2)
    with state_store().write() as con:  # as if stored before the rule, and attempted once since
        con.execute("UPDATE table_registry SET schedule = '0 0 31 2 *' WHERE id = 'stocks'")
        for table_id in ("penguins", "stocks"):
            tables.record_sync(con, table_id, status="failed", started_at=long_ago, error="x")
    assert due_table_ids() == ["penguins"]
    jobs, skipped = start_syncs(None, actor_id=None)
    assert [j.id for j in jobs] == ["sync-table:penguins"]
    assert skipped == ["stocks"]


# -- marketplace tokens: two slugs must never share one token variable -----------------------------


def test_slugs_differing_only_in_dash_and_underscore_cannot_share_a_token(app):
    import pytest

    from agnes.errors import Conflict
    from agnes.marketplace import curated, overlay

    common = {"url": "https://git.example.com/acme/tools.git", "curator_email": "c@example.com"}
    first = curated.create_marketplace(
        {"slug": "acme-tools", "name": "Acme", "token": "secret-one", **common}, actor_id=None
    )
    with pytest.raises(Conflict) as refused:
        curated.create_marketplace(
            {
                "slug": "acme_tools",
                "name": "Other",
                "url": "https://evil.example.com/x.git",
                "curator_email": "c@example.com",
            },
            actor_id=None,
        )
    assert refused.value.field == "slug"
    assert overlay.read_secret(first.token_env) == "secret-one"


# -- caches: a revoke that commits while another thread of the process reads ------------------------


def test_a_token_revoked_during_a_concurrent_request_is_not_trusted_afterwards(app, client, auth):
    """Threads of one process share a write unit's attachment: a request that runs while the
    revoking unit is open reads the new change marker but the token row from before the commit.
    It must not leave the token trusted by the ZIP fast path once the revoke has committed."""
    from agnes import signals
    from agnes.models import tokens
    from agnes.state import state_store

    def zip_status() -> int:
        with client.get("/marketplace.zip", headers=bearer(raw)) as response:
            return response.status_code

    raw = auth.token("ana@example.com")
    assert zip_status() == 200
    with state_store().read() as con:
        token = tokens.lookup_token(con, raw)
    with state_store().write() as con:  # what revoke_pat does; a request runs before it commits
        tokens.revoke_token(con, token.id)
        signals.credentials_changed.send(None, con=con, user_id=token.user_id)
        assert zip_status() == 200  # not committed yet
    assert zip_status() == 401


def test_a_table_grant_revoked_during_a_concurrent_manifest_fetch_is_gone_afterwards(app, client, auth, tmp_path):
    from agnes import people, signals
    from agnes.access import ResourceType
    from agnes.data.sync import sync_table
    from agnes.models import grants
    from agnes.state import state_store
    from tests.data_helpers import copy_tables, penguins_fields, register

    folder = copy_tables(tmp_path / "files")
    register(penguins_fields(folder))
    sync_table("penguins")
    group = people.create_group("analysts", actor_id=None)
    auth.user("ana@example.com")
    people.add_member(group.id, "ana@example.com", actor_id=None)
    grant = people.create_grant(group.id, "table", "penguins", actor_id=None)
    headers = bearer(auth.token("ana@example.com"))

    def listed() -> list[str]:
        return sorted(client.get("/api/sync/manifest", headers=headers).get_json()["tables"])

    assert listed() == ["penguins"]
    with state_store().write() as con:  # what people.delete_grant does; a fetch runs before it commits
        grants.delete_grant(con, grant.id)
        signals.grant_revoked.send(
            None, con=con, group_id=group.id, resource_type=ResourceType.TABLE, resource_id="penguins"
        )
        assert listed() == ["penguins"]  # not committed yet
    assert listed() == []


# -- secrets: a file URL with credentials would be stored in the registry and shown to admins ---------


def test_file_table_url_with_credentials_is_refused(app, client, auth):
    headers = bearer(auth.token("boss@example.com", admin=True))
    body = {
        "name": "remote csv",
        "source_type": "csv",
        "source_spec": {"location": "https://user:s3cret@files.example.com/data.csv"},
    }
    response = client.post("/api/admin/register-table", json=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json()["field"] == "spec.location"
    assert "s3cret" not in response.get_data(as_text=True)
    assert client.get("/api/admin/registry", headers=headers).get_json()["tables"] == []


def test_a_malformed_postgres_dsn_never_shows_its_password_in_the_sync_error(app):
    from pathlib import Path

    import pytest

    from agnes.data import registration
    from agnes.data.sync import SyncFailed, sync_table
    from agnes.models import tables
    from agnes.state import state_store
    from tests.data_helpers import write_overlay

    registration.register_table(
        {
            "name": "orders",
            "source_type": "postgres",
            "source_spec": {"dsn_env": "SHOP_PG_DSN", "table": "public.orders"},
        },
        owner_id=None,
    )
    data_dir = app.config["AGNES_DATA_DIR"]
    for dsn in (
        "postgresql://shop:hunter%zz2secret@127.0.0.1:1/shop",  # bad percent-encoding
        "host=127.0.0.1 port=1 password=hunter2 secret dbname=shop",
    ):  # unquoted space
        write_overlay(Path(data_dir), {"SHOP_PG_DSN": dsn})
        with pytest.raises(SyncFailed) as failure:
            sync_table("orders")
        with state_store().read() as con:
            recorded = tables.get_sync_state(con, "orders").error
        for shown in (str(failure.value), recorded):
            assert "SHOP_PG_DSN" in shown
            assert "secret" not in shown and "hunter" not in shown, shown


# -- CLI: a wrong server URL or a damaged config prints one line, never a traceback -----------------


def _serve_forever(handler_bytes: bytes):  # type: ignore[no-untyped-def]
    """A loopback TCP server answering every connection with ``handler_bytes``; returns (url, stop)."""
    import socket
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(0.2)
    stopping = threading.Event()

    def loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(handler_bytes)
                except OSError:
                    pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(5)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def test_cli_wrong_server_or_damaged_config_gives_one_line_errors(tmp_path):
    from tests.conftest import cli_env, run_cli

    html = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<html></html>"
    for answer in (html, b"SSH-2.0-OpenSSH_9.6\r\n"):
        url, stop = _serve_forever(answer)
        try:
            env = cli_env(url, "agnes_pat_x", tmp_path)
            for args in (["whoami"], ["pull", "--workspace", str(tmp_path / "ws")]):
                result = run_cli(args, env, timeout=60)
                assert result.returncode == 1, (answer, args, result.stderr)
                assert "Traceback" not in result.stderr and result.stderr.startswith("error: "), result.stderr
        finally:
            stop()
    env = cli_env("http://127.0.0.1:9", "x", tmp_path)
    env.pop("AGNES_URL"), env.pop("AGNES_TOKEN")
    config = tmp_path / ".config" / "agnes" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('server = "http://127.0.0.1:9"\ntoken = unquoted\n')
    result = run_cli(["whoami"], env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "config.toml is not valid TOML" in result.stderr


# -- secrets: a token given as the user name of a URL (https://<token>@host) -------------------------


def test_redaction_masks_url_userinfo_without_a_password():
    from agnes.audit import redact, redact_text

    shown = redact_text("could not fetch https://ghp_abcdef123@mirror.example.com/x.git: refused")
    assert "ghp_abcdef123" not in shown and "mirror.example.com/x.git" in shown
    assert "s3cret" not in redact({"url": "https://user:s3cret@host/x"})["url"]
    assert redact_text("see https://host/path@v2 and a@b.example") == "see https://host/path@v2 and a@b.example"


# -- CLI: the git credential helper must not import code from git's working directory --------------


def test_git_credential_helper_ignores_a_cli_package_in_the_working_directory(tmp_path):
    import subprocess

    from tests.conftest import cli_env, run_cli

    home = tmp_path / "home"
    home.mkdir()
    server = "http://agnes.test:8080"
    env = {**cli_env(server, "agnes_pat_secret", home), "GIT_CONFIG_NOSYSTEM": "1"}
    assert run_cli(["marketplace", "setup", "--claude", str(tmp_path / "no-claude")], env).returncode == 1
    project = tmp_path / "project"  # any repository with its own top-level cli package
    (project / "cli").mkdir(parents=True)
    (project / "cli" / "__init__.py").write_text("")
    marker = tmp_path / "ran-project-code"
    (project / "cli" / "main.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    filled = subprocess.run(
        ["git", "credential", "fill"],
        input=f"url={server}/marketplace.git\n\n",
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert not marker.exists()
    assert "password=agnes_pat_secret" in filled.stdout


# -- plugin pages: YAML aliases in a third-party SKILL.md must not expand ("billion laughs") -------


def test_frontmatter_aliases_are_not_expanded(tmp_path):
    from agnes.plugin.contents import read_item, read_plugin_contents

    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 5)]
    skill = tmp_path / "plugin" / "skills" / "bomb"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: bomb\n" + "\n".join(lines) + "\ndescription: *l4\n---\nBody.\n")
    contents = read_plugin_contents(tmp_path / "plugin")
    [item] = contents.skills
    assert item.name == "bomb" and len(item.description) < 100
    document = read_item(tmp_path / "plugin", item)
    assert document is not None and "aliases" in (document.frontmatter.error or "")
    assert all(len(str(v)) < 1000 for v in document.frontmatter.fields.values())


# -- agnes pull: two pulls in one workspace (two Claude Code sessions starting at once) -------------


def test_a_second_pull_in_the_same_workspace_refuses_instead_of_sharing_part_files(tmp_path):
    import fcntl

    from tests.conftest import cli_env, run_cli

    workspace = tmp_path / "ws"
    (workspace / "data").mkdir(parents=True)
    env = cli_env("http://127.0.0.1:9", "agnes_pat_x", tmp_path)  # nothing listens: the lock comes first
    with open(workspace / "data" / ".pull.lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        busy = run_cli(["pull", "--workspace", str(workspace)], env)
    assert busy.returncode == 1 and "another agnes pull is running" in busy.stderr, busy.stderr
    free = run_cli(["pull", "--workspace", str(workspace)], env)
    assert free.returncode == 1 and "cannot reach" in free.stderr  # the lock was released with the holder


# -- audit: a sign-in link refused before its view ran must not be stored in the audit log -----------


def test_sign_in_link_refused_by_csrf_is_not_written_to_the_audit_log(app, client, monkeypatch):
    from agnes.state import state_store
    from tests.conftest import csrf_token

    sent: list[str] = []
    monkeypatch.setattr("agnes.auth.email.deliver_sign_in_link", lambda to, link: sent.append(link))

    client.post("/login", data={"email": "admin@example.com", "csrf_token": csrf_token(client, "/login")})
    path = "/" + sent[0].split("/", 3)[3]
    secret = path.rsplit("/", 1)[1]
    refused = client.post(path, data={})  # no CSRF token: refused before the view consumes the link
    assert refused.status_code == 400
    with state_store().read() as con:
        rows = con.execute("SELECT resource, CAST(params AS VARCHAR) FROM audit_log").fetchall()
    assert rows and not any(secret in (resource or "") or secret in (params or "") for resource, params in rows)


def test_agnes_init_with_malformed_hooks_explains_instead_of_crashing(tmp_path):
    from tests.conftest import cli_env, run_cli

    env = cli_env("http://127.0.0.1:9", "x", tmp_path)
    for hooks in ([], {"SessionStart": {"command": "x"}}):
        workspace = tmp_path / f"ws{len(hooks)}"
        settings = workspace / ".claude" / "settings.json"
        settings.parent.mkdir(parents=True)
        settings.write_text(json.dumps({"hooks": hooks}))
        result = run_cli(["init", "--workspace", str(workspace)], env)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert json.loads(settings.read_text()) == {"hooks": hooks}  # untouched


def test_pull_state_with_foreign_keys_is_ignored_not_a_crash(tmp_path):
    from cli.pull import make_plan
    from cli.workspace import Workspace

    workspace = Workspace(tmp_path)
    workspace.data.mkdir(parents=True)
    workspace.state_path.write_text(
        json.dumps({"tables": {"../../etc/passwd": {}, "Bad Name": {}, "ok": "x", "penguins": {"hash": "a"}}})
    )
    state = workspace.load_state()
    assert state == {"penguins": {"hash": "a"}}
    assert make_plan({"tables": {}}, workspace, state, None).remove == ["penguins"]

"""The ``agnes`` CLI against a live server: login, whoami, admin group/grant/user commands."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from flask import Flask

from tests.conftest import LiveServer, cli_env, run_cli


def test_login_stores_config_with_mode_600_and_rejects_bad_token(
    app: Flask,
    live_server: LiveServer,
    auth,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    token = auth.token("admin@example.com")
    env = cli_env(live_server.url, token, tmp_path)
    env.pop("AGNES_URL"), env.pop("AGNES_TOKEN")
    bad = run_cli(["login", "--server", live_server.url, "--token", "agnes_pat_wrong"], env)
    assert bad.returncode != 0 and "nothing saved" in bad.stderr
    assert not (tmp_path / ".config/agnes/config.toml").exists()
    ok = run_cli(["login", "--server", live_server.url, "--token", token], env)
    assert ok.returncode == 0, ok.stderr
    path = tmp_path / ".config/agnes/config.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # A later failed login leaves the working configuration alone.
    run_cli(["login", "--server", live_server.url, "--token", "agnes_pat_wrong"], env)
    assert token in path.read_text()
    who = run_cli(["whoami", "--json"], env)
    assert who.returncode == 0 and json.loads(who.stdout)["user"]["email"] == "admin@example.com"
    assert run_cli(["logout"], env).returncode == 0 and not path.exists()
    not_logged_in = run_cli(["whoami"], env)
    assert not_logged_in.returncode == 1 and not_logged_in.stderr.startswith("error: not logged in")


def test_admin_group_and_grant_commands(app: Flask, live_server: LiveServer, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    auth.user("ana@example.com")
    env = cli_env(live_server.url, auth.token("admin@example.com"), tmp_path)

    def ok(*args: str) -> str:
        result = run_cli(list(args), env)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    assert "Created group Finance" in ok("admin", "group", "create", "Finance", "--description", "money")
    groups = json.loads(ok("admin", "group", "list", "--json"))
    assert [g["name"] for g in groups] == ["Admin", "Everyone", "Finance"]
    ok("admin", "group", "add-member", "finance", "ana@example.com")
    members = json.loads(ok("admin", "group", "members", "Finance", "--json"))
    assert [m["email"] for m in members] == ["ana@example.com"]
    ok("admin", "grant", "create", "Finance", "table", "orders")
    grants = json.loads(ok("admin", "grant", "list", "--group", "Finance", "--json"))
    assert [(g["resource_type"], g["resource_id"]) for g in grants] == [("table", "orders")]
    table = ok("admin", "grant", "list")
    assert table.splitlines()[0].split() == ["ID", "GROUP", "TYPE", "RESOURCE"]
    ok("admin", "grant", "delete", "--group", "Finance", "--type", "table", "--resource", "orders")
    assert json.loads(ok("admin", "grant", "list", "--json")) == []
    ok("admin", "group", "remove-member", "Finance", "ana@example.com")
    ok("admin", "group", "delete", "Finance", "--yes")
    assert "Finance" not in ok("admin", "group", "list")
    types = json.loads(ok("admin", "grant", "resource-types", "--json"))
    assert {t["key"] for t in types} >= {"table", "marketplace_plugin"}
    ok("admin", "user", "add", "new@example.com", "--name", "New")
    assert "new@example.com" in ok("admin", "user", "list", "--search", "new")


def test_errors_are_one_readable_line(app: Flask, live_server: LiveServer, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(live_server.url, auth.token("admin@example.com"), tmp_path)
    missing = run_cli(["admin", "group", "members", "nope"], env)
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == "error: no group named 'nope' (see 'agnes admin group list')"
    )
    dup = run_cli(["admin", "group", "create", "Admin"], env)
    assert dup.returncode == 1
    assert dup.stderr.strip() == "error: A group named 'Admin' already exists. (field: name)"
    assert "Traceback" not in dup.stderr
    analyst_env = cli_env(live_server.url, auth.token("analyst@example.com"), tmp_path)
    denied = run_cli(["admin", "group", "list"], analyst_env)
    assert denied.returncode == 1 and denied.stderr.strip() == "error: This needs an Agnes administrator."
    down = run_cli(["whoami"], cli_env("http://127.0.0.1:9", "agnes_pat_x", tmp_path))
    assert down.returncode == 1 and down.stderr.startswith("error: cannot reach http://127.0.0.1:9")


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


def test_admin_access_and_user_commands(app: Flask, live_server: LiveServer, auth, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    finance = people.create_group("Finance", actor_id=None)
    auth.user("ana@example.com", name="Ana")
    auth.user("cy@example.com")
    people.add_member(finance.id, "ana@example.com", actor_id=None)
    people.create_grant(finance.id, "table", "orders", actor_id=None)
    folder = Path(app.config["AGNES_DATA_SOURCE_DIRS"][0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders.csv").write_text("a\n1\n")
    from agnes.data.registration import register_table

    register_table(
        {
            "id": "orders",
            "name": "orders",
            "source_type": "csv",
            "source_spec": {"location": str(folder / "orders.csv")},
        },
        owner_id=None,
    )
    env = cli_env(live_server.url, auth.token("admin@example.com", admin=True), tmp_path)

    yes = run_cli(["admin", "access", "explain", "ana@example.com", "table", "orders"], env)
    assert yes.returncode == 0 and yes.stdout.startswith("Ana can download orders through Finance"), yes.stderr
    no = run_cli(["admin", "access", "explain", "cy@example.com", "table", "orders", "--json"], env)
    assert no.returncode == 3 and json.loads(no.stdout)["allowed"] is False
    missing = run_cli(["admin", "access", "explain", "nobody@example.com", "table", "orders"], env)
    assert missing.returncode == 1 and "nobody@example.com" in missing.stderr
    access = json.loads(run_cli(["admin", "access", "user", "ana@example.com", "--json"], env).stdout)
    assert access == [{"resource_type": "table", "resource_id": "orders", "via_groups": ["Finance"]}]

    shown = run_cli(["admin", "user", "show", "ana@example.com"], env)
    assert shown.returncode == 0 and "Finance" in shown.stdout and "status: active" in shown.stdout
    assert (
        run_cli(["admin", "user", "deactivate", "ana@example.com"], env).stdout.strip()
        == "ana@example.com deactivated."
    )
    assert json.loads(run_cli(["admin", "user", "show", "ana@example.com", "--json"], env).stdout)["active"] is False
    assert run_cli(["admin", "user", "activate", "ana@example.com"], env).returncode == 0
    itself = run_cli(["admin", "user", "deactivate", "admin@example.com"], env)
    assert itself.returncode == 1 and "your own account" in itself.stderr

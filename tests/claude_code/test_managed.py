"""The managed-settings.json of a group: content, strict option, diff against the previous
download, bad input, the page and its fragment, and the CLI commands."""

from __future__ import annotations

import json

from bs4 import BeautifulSoup

from tests.conftest import bearer, run_cli

HX = {"HX-Request": "true"}
URL = "/api/admin/claude-code/managed-settings"


def test_the_file_registers_the_marketplace_requires_system_plugins_and_exports_otel(client, fleet) -> None:  # type: ignore[no-untyped-def]
    token = fleet["admin_token"]
    answer = client.get(URL, query_string={"group": "everyone"}, headers=bearer(token))
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    settings = json.loads(answer.data)
    server = "http://localhost"  # AGNES_BASE_URL of the test app
    assert settings["extraKnownMarketplaces"] == {
        "agnes": {"source": {"source": "git", "url": f"{server}/marketplace.git"}, "autoUpdate": True}
    }
    assert settings["enabledPlugins"] == {"alpha@agnes": True}  # system only; beta is optional
    assert "strictKnownMarketplaces" not in settings
    assert settings["otelHeadersHelper"] == "agnes otel-headers"
    env = settings["env"]
    assert env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1" and env["OTEL_LOG_TOOL_DETAILS"] == "1"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == server
    assert env["OTEL_LOGS_EXPORTER"] == env["OTEL_METRICS_EXPORTER"] == "otlp"
    assert token not in answer.get_data(as_text=True) and "agnes_pat_" not in answer.get_data(as_text=True)

    strict = json.loads(client.get(URL, query_string={"group": "everyone", "strict": "1"}, headers=bearer(token)).data)
    assert strict["strictKnownMarketplaces"] == [{"source": "hostPattern", "hostPattern": "^localhost$"}]


def test_a_group_named_by_id_and_bad_input(client, fleet, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes import people

    group = people.create_group("Analysts", "", actor_id=None)
    headers = bearer(fleet["admin_token"])
    assert client.get(URL, query_string={"group": group.id}, headers=headers).status_code == 200
    missing = client.get(URL, headers=headers)
    assert missing.status_code == 400 and missing.get_json()["field"] == "group"
    unknown = client.get(URL, query_string={"group": "nope"}, headers=headers)
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "group_not_found"
    bad = client.get(URL, query_string={"group": group.id, "strict": "maybe"}, headers=headers)
    assert bad.status_code == 400 and bad.get_json() == {
        "error": "invalid_strict",
        "message": "strict must be 1 or 0.",
        "field": "strict",
    }
    analyst = client.get(URL, query_string={"group": group.id}, headers=bearer(auth.token()))
    assert analyst.status_code == 403


def test_the_page_shows_what_changed_since_the_previous_download(client, fleet, auth) -> None:  # type: ignore[no-untyped-def]
    from agnes.marketplace import system

    auth.login("admin@example.com", admin=True)
    page = BeautifulSoup(client.get("/admin/claude-code").data, "html.parser")
    assert page.select_one("#settings-group option[selected]")["value"] == "everyone"
    assert page.select_one("#settings-diff").text.strip() == "Never downloaded for this group."
    assert json.loads(page.select_one("#settings-json").text)["enabledPlugins"] == {"alpha@agnes": True}
    assert [li["data-plugin-id"] for li in page.select("#settings-plugins li")] == ["acme/alpha"]
    paths = [td.text for td in page.select("#settings-locations code")]
    assert "/etc/claude-code/managed-settings.json" in paths

    download = client.get("/admin/claude-code/managed-settings.json", query_string={"group": "everyone"})
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    unchanged = BeautifulSoup(client.get("/admin/claude-code").data, "html.parser")
    assert unchanged.select_one("#settings-diff").text.strip().startswith("Unchanged since the download of")

    system.set_system("acme", "beta", True, actor_id=None)
    fragment = client.get("/admin/claude-code", query_string={"group": "everyone"}, headers=HX)
    assert b"<html" not in fragment.data and "HX-Request" in fragment.headers.get("Vary", "")
    changed = BeautifulSoup(fragment.data, "html.parser")
    assert changed.select_one("div#managed-settings")["data-group-id"] == "everyone"
    added = [span.text for span in changed.select("#settings-diff span.add")]
    removed = [span.text for span in changed.select("#settings-diff span.del")]
    assert added == ['+    "alpha@agnes": true,', '+    "beta@agnes": true'] and removed == ['-    "alpha@agnes": true']
    api = client.get("/api/admin/claude-code", query_string={"group": "everyone"}).get_json()
    assert api["changed_since_download"] is True and any('"beta@agnes": true' in line for line in api["diff"])
    strict_page = BeautifulSoup(client.get("/admin/claude-code?strict=1").data, "html.parser")
    assert strict_page.select_one("#settings-strict").has_attr("checked")
    assert "strictKnownMarketplaces" in strict_page.select_one("#settings-json").text


def test_the_download_is_audited(client, fleet) -> None:  # type: ignore[no-untyped-def]
    from agnes.models import audit as audit_model
    from agnes.state import state_store

    client.get(URL, query_string={"group": "everyone", "strict": "1"}, headers=bearer(fleet["admin_token"]))
    with state_store().read() as con:
        rows = con.execute(
            "SELECT resource, params FROM audit_log WHERE action = 'claude_code.settings_download'"
        ).fetchall()
    assert audit_model is not None and len(rows) == 1
    assert rows[0][0] == "group:everyone" and json.loads(rows[0][1])["strict"] is True


def test_the_cli_prints_the_file_and_the_otel_header(live_server, fleet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import cli_env

    token = fleet["admin_token"]
    env = cli_env(live_server.url, token, tmp_path / "home")
    printed = run_cli(["admin", "claude-code", "settings", "--group", "everyone"], env)
    assert printed.returncode == 0, printed.stderr
    settings = json.loads(printed.stdout)
    assert settings["extraKnownMarketplaces"]["agnes"]["source"]["url"] == f"{live_server.url}/marketplace.git"
    assert settings["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == live_server.url
    out = tmp_path / "managed-settings.json"
    written = run_cli(["admin", "claude-code", "settings", "--group", "Everyone", "--strict", "--out", str(out)], env)
    assert written.returncode == 0, written.stderr
    assert "strictKnownMarketplaces" in json.loads(out.read_text())
    unknown = run_cli(["admin", "claude-code", "settings", "--group", "Nobody"], env)
    assert unknown.returncode == 1 and "no group named 'Nobody'" in unknown.stderr

    headers = run_cli(["otel-headers"], env)
    assert headers.returncode == 0 and json.loads(headers.stdout) == {"Authorization": f"Bearer {token}"}
    signed_out = run_cli(["otel-headers"], {**env, "AGNES_TOKEN": ""})
    assert signed_out.returncode == 1 and "not logged in" in signed_out.stderr and signed_out.stdout == ""

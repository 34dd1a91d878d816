"""Syncing curated marketplaces from real git repositories: every source form, failures that keep
the previous state, token redaction, change history, sync-all, and a real RQ worker."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from tests.conftest import bearer, run_rq_jobs
from tests.marketplace.conftest import (
    commit_all,
    fixture_repo,
    git,
    register,
    small_marketplace,
    sync_now,
    write_manifest,
    write_plugin,
)

TOKEN = "ghp_Sync0Secret0Token0Value0123456789"


@pytest.fixture
def github(tmp_path: Path) -> Path:
    """A local stand-in for https://github.com/ (AGNES_GIT_URL_REWRITES points there)."""
    root = tmp_path / "github"
    root.mkdir()
    return root


@pytest.fixture
def app_config(app_config, tmp_path):  # type: ignore[no-untyped-def]
    return {**app_config, "AGNES_GIT_URL_REWRITES": [f"https://github.com/={tmp_path}/github/"]}


def plugins_by_name(client, headers, slug):  # type: ignore[no-untyped-def]
    response = client.get(f"/api/marketplaces/{slug}/plugins", headers=headers)
    assert response.status_code == 200
    return {p["name"]: p for p in response.get_json()["plugins"]}


def data_dir(app) -> Path:  # type: ignore[no-untyped-def]
    return Path(app.config["AGNES_DATA_DIR"])


def test_every_source_form(app, client, admin_headers, tmp_path, github):  # type: ignore[no-untyped-def]
    # Remote sources: a whole repo (url, pinned to its first commit), a monorepo (git-subdir), github.
    url_repo = write_plugin(github / "acme" / "url-plugin.git", "url-plugin", version="1.0.0")
    first = commit_all(url_repo, "v1")
    write_plugin(url_repo, "url-plugin", version="2.0.0")
    commit_all(url_repo, "v2")
    mono = github / "acme" / "mono.git"
    write_plugin(mono / "plugins" / "sub", "sub-plugin", agents=("helper",))
    commit_all(mono)
    commit_all(write_plugin(github / "acme" / "gh-plugin.git", "gh-plugin", commands=("go",)))

    repo = tmp_path / "market"
    write_plugin(
        repo / "plugins" / "local-one",
        "local-one",
        skills=("a", "b"),
        agents=("x",),
        commands=("c",),
        manifest_name="local-one-own-name",
        extra={"skills/nested/deep/SKILL.md": "---\nname: d\n---\n"},
    )
    write_plugin(repo / "plugins" / "bare", "bare", plugin_json=False)
    (repo / "skills" / "root-skill").mkdir(parents=True)
    (repo / "skills" / "root-skill" / "SKILL.md").write_text("---\nname: Root Skill\n---\nroot\n")
    write_manifest(
        repo,
        [
            {"name": "local-one", "source": "./plugins/local-one", "version": "0.1.0"},
            {"name": "bare", "source": "bare", "description": "joined to pluginRoot"},
            {"name": "whole", "source": "./", "strict": False, "skills": ["./skills/root-skill"]},
            {
                "name": "url-plugin",
                "source": {"source": "url", "url": "https://github.com/acme/url-plugin.git", "sha": first},
            },
            {
                "name": "sub-plugin",
                "source": {"source": "git-subdir", "url": "https://github.com/acme/mono.git", "path": "plugins/sub"},
            },
            {"name": "gh-plugin", "source": {"source": "github", "repo": "acme/gh-plugin"}},
            {"name": "gone", "source": {"source": "github", "repo": "nobody/missing"}},
            {"name": "from-npm", "source": {"source": "npm", "package": "@acme/x"}},
            {"name": "escapes", "source": "../outside"},
            {"name": "bad name!", "source": "./plugins/bare"},
        ],
        metadata={"pluginRoot": "./plugins"},
    )
    commit_all(repo)
    register(client, admin_headers, "forms", repo)
    result = sync_now("forms")
    assert result["plugin_count"] == 9

    plugins = plugins_by_name(client, admin_headers, "forms")
    assert set(plugins) == {
        "local-one",
        "bare",
        "whole",
        "url-plugin",
        "sub-plugin",
        "gh-plugin",
        "gone",
        "from-npm",
        "escapes",
    }
    local = plugins["local-one"]
    assert (local["source_kind"], local["available"], local["manifest_name"]) == ("path", True, "local-one-own-name")
    assert (local["skills"], local["agents"], local["commands"]) == (3, 1, 1)  # nested SKILL.md counts
    assert local["version"] == "1.0.0"  # plugin.json wins over the entry's 0.1.0, as in Claude Code (issue 15)
    assert plugins["bare"]["available"] and plugins["bare"]["manifest_name"] == "bare"
    whole = plugins["whole"]
    assert (whole["source_kind"], whole["available"], whole["skills"]) == ("root", True, 1)
    assert plugins["url-plugin"]["source_kind"] == "url" and plugins["url-plugin"]["version"] == "1.0.0"  # pinned
    assert plugins["sub-plugin"]["source_kind"] == "git-subdir" and plugins["sub-plugin"]["agents"] == 1
    assert plugins["gh-plugin"]["source_kind"] == "github" and plugins["gh-plugin"]["commands"] == 1
    for name in ("gone", "from-npm", "escapes"):
        assert plugins[name]["available"] is False and plugins[name]["unavailable_reason"]
    assert "not found" in plugins["gone"]["unavailable_reason"]
    assert "npm" in plugins["from-npm"]["unavailable_reason"]

    from agnes.models import marketplaces
    from agnes.state import state_store

    with state_store().read() as con:
        rows = {p.name: p for p in marketplaces.list_plugins(con, "forms")}
    served_file = data_dir(app) / rows["url-plugin"].content_dir / ".claude-plugin" / "plugin.json"
    assert json.loads(served_file.read_text())["version"] == "1.0.0"
    assert (data_dir(app) / rows["sub-plugin"].content_dir / "agents" / "helper.md").is_file()
    assert rows["gone"].content_dir is None


def test_fixture_marketplaces_sync_on_a_real_rq_worker(rq_app, tmp_path, github):  # type: ignore[no-untyped-def]
    """Both fixture marketplaces: local plugins served, unreachable remote ones marked unavailable."""
    from agnes.auth.pat import create_pat
    from agnes.models import users
    from agnes.state import state_store

    with state_store().read() as con:
        admin = users.get_user_by_email(con, "admin@example.com")
    _, raw = create_pat(admin.id, "t", 1)
    headers = bearer(raw)
    client = rq_app.test_client()
    register(client, headers, "wshobson", fixture_repo("wshobson-agents", tmp_path / "wshobson"))
    register(client, headers, "kwp", fixture_repo("anthropics-knowledge-work-plugins", tmp_path / "kwp"))
    jobs = [
        client.post(f"/api/marketplaces/{slug}/sync", headers=headers).get_json()["job"]["id"]
        for slug in ("wshobson", "kwp")
    ]
    run_rq_jobs(rq_app)
    for job_id in jobs:
        assert client.get(f"/api/jobs/{job_id}", headers=headers).get_json()["state"] == "finished"

    wsh = plugins_by_name(client, headers, "wshobson")
    assert len(wsh) == 92
    assert sum(p["available"] for p in wsh.values()) == 91
    assert wsh["pensyve"]["source_kind"] == "git-subdir" and not wsh["pensyve"]["available"]
    a11y = wsh["accessibility-compliance"]
    assert a11y["available"] and a11y["skills"] == 2 and a11y["agents"] == 1 and a11y["commands"] == 1

    kwp = plugins_by_name(client, headers, "kwp")
    kinds = {}
    for p in kwp.values():
        kinds.setdefault(p["source_kind"], []).append(p["available"])
    assert len(kinds["path"]) == 22 and sum(kinds["path"]) == 21
    assert "does not exist" in kwp["data"]["unavailable_reason"]  # ./data is missing from the fixture
    assert len(kinds["url"]) == 44 and not any(kinds["url"])
    assert len(kinds["git-subdir"]) == 28 and not any(kinds["git-subdir"])
    assert kwp["productivity"]["skills"] >= 4
    detail = client.get("/api/marketplaces/kwp", headers=headers).get_json()
    assert detail["last_error"] is None and detail["history"][0]["status"] == "ok"
    assert len(detail["history"][0]["unavailable"]) == 73


def test_failed_sync_keeps_previous_state(app, client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    from agnes.marketplace.sync import SyncError

    repo = small_marketplace(tmp_path / "repo")
    register(client, admin_headers, "acme", repo)
    sync_now("acme")
    before = plugins_by_name(client, admin_headers, "acme")
    good = client.get("/api/marketplaces/acme", headers=admin_headers).get_json()

    from agnes.models import marketplaces
    from agnes.state import state_store

    with state_store().read() as con:
        served_dir = data_dir(app) / marketplaces.get_plugin(con, "acme", "alpha").content_dir

    (repo / ".claude-plugin" / "marketplace.json").write_text("{ not json")
    commit_all(repo, "broken manifest")
    with pytest.raises(SyncError, match="not valid JSON"):
        sync_now("acme")
    shutil.rmtree(repo)  # and an unreachable repository
    with pytest.raises(SyncError, match="not found"):
        sync_now("acme")

    after = client.get("/api/marketplaces/acme", headers=admin_headers).get_json()
    assert plugins_by_name(client, admin_headers, "acme") == before
    assert after["last_commit_sha"] == good["last_commit_sha"] and after["last_synced_at"] == good["last_synced_at"]
    assert "not found" in after["last_error"]
    assert [h["status"] for h in after["history"]] == ["failed", "failed", "ok"]
    assert (served_dir / ".claude-plugin" / "plugin.json").is_file()  # the served files are still there


def test_history_records_added_removed_and_version_changes(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo", ("alpha", "beta"))
    register(client, admin_headers, "acme", repo)
    first = sync_now("acme")
    assert first["added"] == ["alpha", "beta"]
    shutil.rmtree(repo / "plugins" / "beta")
    write_plugin(repo / "plugins" / "gamma", "gamma")
    write_plugin(repo / "plugins" / "alpha", "alpha", version="1.1.0")  # plugin.json is the version (issue 15)
    write_manifest(
        repo,
        [
            {"name": "alpha", "source": "./plugins/alpha", "version": "1.1.0"},
            {"name": "gamma", "source": "./plugins/gamma", "version": "1.0.0"},
        ],
    )
    commit_all(repo, "v2")
    second = sync_now("acme")
    assert second["added"] == ["gamma"] and second["removed"] == ["beta"]
    assert second["changed"] == [{"name": "alpha", "from": "1.0.0", "to": "1.1.0"}]
    history = client.get("/api/marketplaces/acme/history", headers=admin_headers).get_json()["history"]
    assert history[0]["removed"] == ["beta"] and history[1]["added"] == ["alpha", "beta"]


def test_branch_is_followed(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    repo = small_marketplace(tmp_path / "repo", ("alpha",))
    git("checkout", "-q", "-b", "release", cwd=repo)
    small_marketplace(repo, ("alpha", "beta"), version="2.0.0")
    git("checkout", "-q", "main", cwd=repo)
    register(client, admin_headers, "acme", repo, branch="release")
    assert sync_now("acme")["plugin_count"] == 2
    client.patch("/api/marketplaces/acme", json={"branch": "nope"}, headers=admin_headers)
    from agnes.marketplace.sync import SyncError

    with pytest.raises(SyncError, match="no branch or tag 'nope'"):
        sync_now("acme")


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """A git host that fails with a 500 and records the credentials it was sent."""

    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        self.seen.append(self.headers.get("Authorization", ""))
        if not self.headers.get("Authorization"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_failure_messages_never_contain_the_token(app, client, admin_headers, caplog):  # type: ignore[no-untyped-def]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # The mirror's path carries the token, so a naive error message would leak it.
        app.config["AGNES_GIT_URL_REWRITES"] = [
            f"https://git.example.com/=http://127.0.0.1:{server.server_port}/{TOKEN}/"
        ]
        register(client, admin_headers, "private", "https://git.example.com/acme/private.git", token=TOKEN)
        job = client.post("/api/marketplaces/private/sync", headers=admin_headers).get_json()["job"]
        app.extensions["agnes_jobs"].wait_idle()
    finally:
        server.shutdown()
        server.server_close()
    import base64

    assert any(base64.b64decode(h.split()[1]).decode().endswith(":" + TOKEN) for h in _EchoHandler.seen if h)
    status = client.get(f"/api/jobs/{job['id']}", headers=admin_headers).get_json()
    detail = client.get("/api/marketplaces/private", headers=admin_headers).get_json()
    assert status["state"] == "failed"
    texts = [status["error"], detail["last_error"], detail["history"][0]["error"], caplog.text]
    assert all(TOKEN not in (t or "") for t in texts)
    assert "[redacted]" in detail["last_error"]
    auth_page = client.get("/api/marketplaces", headers=admin_headers).get_data(as_text=True)
    assert TOKEN not in auth_page


def test_sync_all_continues_after_a_failure(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "broken", small_marketplace(tmp_path / "gone"))
    shutil.rmtree(tmp_path / "gone")  # it went away after registration
    register(client, admin_headers, "good", small_marketplace(tmp_path / "repo"))
    from agnes.jobs.marketplace import run_sync_all_marketplaces

    result = run_sync_all_marketplaces()
    assert [s["id"] for s in result["synced"]] == ["good"]
    assert [e["id"] for e in result["errors"]] == ["broken"]


def test_nightly_sync_is_scheduled() -> None:
    from agnes.jobs.schedule import PERIODIC, resolve

    entry = next(p for p in PERIODIC if p.name == "sync-all-marketplaces")
    assert entry.cron == "0 3 * * *"
    assert resolve(entry.target).__name__ == "run_sync_all_marketplaces"


def test_history_is_bounded(client, admin_headers, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from agnes.models import marketplace_history

    monkeypatch.setattr(marketplace_history, "HISTORY_KEEP", 3)
    register(client, admin_headers, "acme", small_marketplace(tmp_path / "repo"))
    for _ in range(5):
        sync_now("acme")
    history = client.get("/api/marketplaces/acme/history", headers=admin_headers).get_json()["history"]
    assert len(history) == 3


# -- content size (issue 10 item 8) --------------------------------------------------------------
# Before the fix a 60 MB blob was served and a root ("./") source copied the whole repository into
# every plugin's checkout, whatever its entry listed.


def test_plugins_over_the_size_or_file_cap_are_unavailable_with_the_reason(app, client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    app.config.update(AGNES_PLUGIN_MAX_MB=1, AGNES_PLUGIN_MAX_FILES=6)
    repo = tmp_path / "market"
    write_plugin(repo / "plugins" / "big", "big", extra={"assets/blob.bin": "x" * (2 * 1024 * 1024)})
    write_plugin(repo / "plugins" / "many", "many", extra={f"notes/{i}.md": "n" for i in range(10)})
    write_plugin(repo / "plugins" / "fine", "fine")
    write_manifest(repo, [{"name": n, "source": f"./plugins/{n}"} for n in ("big", "many", "fine")])
    commit_all(repo)
    register(client, admin_headers, "acme", repo)
    sync_now("acme")
    plugins = plugins_by_name(client, admin_headers, "acme")
    assert plugins["fine"]["available"]
    assert not plugins["big"]["available"] and "AGNES_PLUGIN_MAX_MB" in plugins["big"]["unavailable_reason"]
    assert not plugins["many"]["available"] and "AGNES_PLUGIN_MAX_FILES" in plugins["many"]["unavailable_reason"]
    checkouts = data_dir(app) / "marketplaces" / "acme" / "checkouts"
    assert not list(checkouts.glob("*/big")) and not list(checkouts.glob("*/many"))


def test_a_root_source_serves_only_what_its_entry_lists_and_never_git(app, client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    repo = tmp_path / "market"
    write_plugin(repo, "whole", skills=("listed", "unlisted"), agents=("helper",))
    (repo / "huge-dataset.csv").write_text("a,b\n" * 1000)
    write_manifest(
        repo,
        [
            {"name": "listed", "source": "./", "strict": False, "skills": ["./skills/listed"]},
            {"name": "whole", "source": "./"},
        ],
    )
    commit_all(repo)
    register(client, admin_headers, "acme", repo)
    sync_now("acme")
    plugins = plugins_by_name(client, admin_headers, "acme")
    assert plugins["listed"]["available"] and plugins["listed"]["skills"] == 1
    checkout = next((data_dir(app) / "marketplaces" / "acme" / "checkouts").glob("*-*"))
    listed = sorted(str(p.relative_to(checkout / "listed")) for p in (checkout / "listed").rglob("*") if p.is_file())
    assert listed == [".claude-plugin/marketplace.json", ".claude-plugin/plugin.json", "skills/listed/SKILL.md"]
    whole = {str(p.relative_to(checkout / "whole")) for p in (checkout / "whole").rglob("*") if p.is_file()}
    assert "huge-dataset.csv" in whole and "skills/unlisted/SKILL.md" in whole
    assert not any(part == ".git" for path in whole for part in Path(path).parts)

"""Grants, subscriptions and the served marketplace: resolver, ZIP (ETag/304), git over smart HTTP
(a real ``git clone`` against a live server), the trailing-slash JSON form, caches and pruning."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest

from tests.conftest import bearer
from tests.marketplace.conftest import (
    GIT_ENV,
    commit_all,
    register,
    small_marketplace,
    sync_now,
    write_manifest,
    write_plugin,
)

ANALYST = "analyst@example.com"


def grant(client, headers, group, resource_id):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/admin/grants",
        json={"group_id": group, "resource_type": "marketplace_plugin", "resource_id": resource_id},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def new_group(client, headers, name, *emails):  # type: ignore[no-untyped-def]
    group = client.post("/api/admin/groups", json={"name": name}, headers=headers).get_json()
    for email in emails:
        assert (
            client.post(f"/api/admin/groups/{group['id']}/members", json={"email": email}, headers=headers).status_code
            == 201
        )
    return group["id"]


def install(client, headers, rid):  # type: ignore[no-untyped-def]
    return client.post(f"/api/marketplace/curated/{rid}/install", headers=headers)


def served_names(client, headers):  # type: ignore[no-untyped-def]
    info = client.get("/marketplace/info", headers=headers)
    assert info.status_code == 200
    return [p["prefixed_name"] for p in info.get_json()["plugins"]]


def zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture
def market(client, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    register(client, admin_headers, "acme", small_marketplace(tmp_path / "acme", ("alpha", "beta", "gamma")))
    sync_now("acme")
    return "acme"


def test_grant_makes_available_and_subscription_serves(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    analyst = bearer(auth.token(ANALYST))
    assert client.get("/api/my-stack", headers=analyst).get_json()["plugins"] == []
    assert install(client, analyst, "acme/alpha").status_code == 404  # not granted: not available
    grant(client, admin_headers, "everyone", "acme/alpha")
    stack = client.get("/api/my-stack", headers=analyst).get_json()["plugins"]
    assert [(p["id"], p["subscribed"], p["served"]) for p in stack] == [("acme/alpha", False, False)]
    assert served_names(client, analyst) == []
    response = install(client, analyst, "acme/alpha")
    assert response.status_code == 200 and response.get_json()["subscribed"] is True
    assert served_names(client, analyst) == ["acme-alpha"]
    assert client.delete("/api/marketplace/curated/acme/alpha/install", headers=analyst).status_code == 200
    assert served_names(client, analyst) == []


def test_admin_gets_no_shortcut(client, admin_headers, market):  # type: ignore[no-untyped-def]
    assert install(client, admin_headers, "acme/alpha").status_code == 404
    assert client.get("/api/my-stack", headers=admin_headers).get_json()["plugins"] == []
    grant(client, admin_headers, "admin", "acme/alpha")
    assert install(client, admin_headers, "acme/alpha").status_code == 200
    assert served_names(client, admin_headers) == ["acme-alpha"]


def test_revoking_one_of_two_groups_keeps_access(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    both = bearer(auth.token(ANALYST))
    only_a = bearer(auth.token("only-a@example.com"))
    group_a = new_group(client, admin_headers, "Team A", ANALYST, "only-a@example.com")
    group_b = new_group(client, admin_headers, "Team B", ANALYST)
    grant_a = grant(client, admin_headers, group_a, "acme/beta")
    grant_b = grant(client, admin_headers, group_b, "acme/beta")
    for headers in (both, only_a):
        assert install(client, headers, "acme/beta").status_code == 200
    assert client.delete(f"/api/admin/grants/{grant_a}", headers=admin_headers).status_code == 204
    # the analyst still reaches the plugin through Team B: subscription kept, still served
    assert served_names(client, both) == ["acme-beta"]
    assert [p["subscribed"] for p in client.get("/api/my-stack", headers=both).get_json()["plugins"]] == [True]
    # the Team-A-only user lost all access: subscription dropped (a later grant does not resurrect it)
    assert served_names(client, only_a) == []
    grant(client, admin_headers, group_a, "acme/beta")
    assert served_names(client, only_a) == []
    assert client.delete(f"/api/admin/grants/{grant_b}", headers=admin_headers).status_code == 204
    assert served_names(client, both) == ["acme-beta"]  # Team A was granted again


def test_zip_layout_etag_and_304(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    analyst = bearer(auth.token(ANALYST))
    grant(client, admin_headers, "everyone", "acme/alpha")
    grant(client, admin_headers, "everyone", "acme/beta")
    install(client, analyst, "acme/alpha")
    first = client.get("/marketplace.zip", headers=analyst, buffered=True)
    assert first.status_code == 200 and first.mimetype == "application/zip"
    etag = first.headers["ETag"]
    members = zip_members(first.data)
    manifest = json.loads(members[".claude-plugin/marketplace.json"])
    assert manifest["name"] == "agnes"
    assert manifest["plugins"] == [
        {"name": "alpha", "description": "The alpha plugin", "version": "1.0.0", "source": "./plugins/acme-alpha"}
    ]
    assert "plugins/acme-alpha/.claude-plugin/plugin.json" in members
    assert "plugins/acme-alpha/skills/alpha-skill/SKILL.md" in members
    assert not any(m.startswith("plugins/acme-beta") for m in members)
    again = client.get("/marketplace.zip", headers=analyst, buffered=True)
    assert again.data == first.data and again.headers["ETag"] == etag  # cached, byte-identical
    not_modified = client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}, buffered=True)
    assert not_modified.status_code == 304 and not_modified.headers["ETag"] == etag and not_modified.data == b""
    # any change to the set is visible on the next request
    install(client, analyst, "acme/beta")
    changed = client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}, buffered=True)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "plugins/acme-beta/.claude-plugin/plugin.json" in zip_members(changed.data)


def test_zip_and_info_need_a_valid_token(client, auth):  # type: ignore[no-untyped-def]
    for path in ("/marketplace.zip", "/marketplace/info"):
        anonymous = client.get(path)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert anonymous.get_json()["error"] == "authentication_required"
        assert client.get(path, headers=bearer("agnes_pat_wrong")).status_code == 401
    token = auth.token(ANALYST)
    from agnes.auth.pat import list_pats, revoke_pat
    from agnes.models import users
    from agnes.state import state_store

    assert client.get("/marketplace.zip", headers=bearer(token), buffered=True).status_code == 200
    with state_store().read() as con:
        user = users.get_user_by_email(con, ANALYST)
    revoke_pat(list_pats(user.id)[0].id, owner_id=user.id)
    assert client.get("/marketplace.zip", headers=bearer(token), buffered=True).status_code == 401


def test_sync_change_is_visible_on_next_request(client, auth, admin_headers, market, tmp_path):  # type: ignore[no-untyped-def]
    analyst = bearer(auth.token(ANALYST))
    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, analyst, "acme/alpha")
    etag = client.get("/marketplace.zip", headers=analyst, buffered=True).headers["ETag"]
    small_marketplace(tmp_path / "acme", ("alpha", "beta", "gamma"), version="2.0.0")
    sync_now("acme")
    response = client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}, buffered=True)
    assert response.status_code == 200 and response.headers["ETag"] != etag
    manifest = json.loads(zip_members(response.data)[".claude-plugin/marketplace.json"])
    assert manifest["plugins"][0]["version"] == "2.0.0"


def test_two_marketplaces_shipping_a_same_named_plugin(client, auth, admin_headers, tmp_path):  # type: ignore[no-untyped-def]
    for slug in ("one", "two"):
        repo = tmp_path / slug
        write_plugin(repo / "plugins" / "tools", "tools", extra={"README.md": f"tools from {slug}\n"})
        write_manifest(repo, [{"name": "tools", "source": "./plugins/tools"}])
        commit_all(repo)
        register(client, admin_headers, slug, repo)
        sync_now(slug)
        grant(client, admin_headers, "everyone", f"{slug}/tools")
    analyst = bearer(auth.token(ANALYST))
    install(client, analyst, "one/tools")
    install(client, analyst, "two/tools")
    info = client.get("/marketplace/info", headers=analyst).get_json()["plugins"]
    assert [(p["name"], p["prefixed_name"], p["marketplace"]) for p in info] == [
        ("tools", "one-tools", "one"),
        ("two-tools", "two-tools", "two"),
    ]
    members = zip_members(client.get("/marketplace.zip", headers=analyst, buffered=True).data)
    assert members["plugins/one-tools/README.md"] == b"tools from one\n"
    assert members["plugins/two-tools/README.md"] == b"tools from two\n"
    manifest = json.loads(members[".claude-plugin/marketplace.json"])
    assert [p["name"] for p in manifest["plugins"]] == ["tools", "two-tools"]  # unique names for Claude Code
    # the renamed copy's plugin.json carries the served name, so Claude Code links entry and plugin
    assert json.loads(members["plugins/two-tools/.claude-plugin/plugin.json"])["name"] == "two-tools"
    assert json.loads(members["plugins/one-tools/.claude-plugin/plugin.json"])["name"] == "tools"


def test_concurrent_first_builds_of_one_etag(app, client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    from agnes.marketplace import packager, resolver
    from agnes.models import users
    from agnes.state import state_store

    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, bearer(auth.token(ANALYST)), "acme/alpha")
    with state_store().read() as con:
        user = users.get_user_by_email(con, ANALYST)
    served = resolver.resolve(user.id, ["everyone"])
    barrier = threading.Barrier(6)
    results, errors = [], []

    def build(kind: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append((kind, packager.git_repo(served) if kind == "git" else packager.zip_file(served)))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=build, args=(k,)) for k in ("git", "zip") * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len({p for k, p in results if k == "git"}) == 1 and len({p for k, p in results if k == "zip"}) == 1
    root = Path(app.config["AGNES_DATA_DIR"]) / "marketplaces"
    assert sorted(p.name for p in (root / "git-cache").iterdir()) == [f"{served.etag}.git"]
    assert sorted(p.name for p in (root / "zip-cache").iterdir()) == [f"{served.etag}.zip"]
    repo = root / "git-cache" / f"{served.etag}.git"
    assert [p.suffix for p in (repo / "objects" / "pack").iterdir()] != []
    assert not [p for p in (repo / "objects").iterdir() if len(p.name) == 2]  # a pack, no loose objects


def test_commit_is_deterministic(app, tmp_path, client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    from agnes.marketplace import packager, resolver

    grant(client, admin_headers, "everyone", "acme/gamma")
    user_id = auth.user(ANALYST)
    install(client, bearer(auth.token(ANALYST)), "acme/gamma")
    served = resolver.resolve(user_id, ["everyone"])
    app.config["AGNES_MARKETPLACE_PACK_LEVEL"] = 6
    first = packager.write_git_repo(served, tmp_path / "a.git")
    second = packager.write_git_repo(served, tmp_path / "b.git")
    app.config["AGNES_MARKETPLACE_PACK_LEVEL"] = 0  # the setting decides the zlib level of the pack
    stored = packager.write_git_repo(served, tmp_path / "c.git")
    assert first == second == stored
    packs = {r: next((tmp_path / r / "objects" / "pack").glob("*.pack")).read_bytes() for r in ("a.git", "c.git")}
    text = max((entry.read() for entry in packager.iter_files(served)), key=len)  # the merged marketplace.json
    assert text in packs["c.git"] and text not in packs["a.git"]  # level 0 stores, level 6 compresses
    assert len(packs["c.git"]) > len(packs["a.git"])
    log = subprocess.run(
        ["git", "--git-dir", str(tmp_path / "a.git"), "log", "--format=%an <%ae> %at %s"],
        capture_output=True,
        text=True,
        env=GIT_ENV,
        check=True,
    ).stdout
    assert log.strip() == "agnes-marketplace <noreply@agnes.local> 0 agnes marketplace snapshot"
    for repo in ("a.git", "c.git"):
        fsck = subprocess.run(
            ["git", "--git-dir", str(tmp_path / repo), "fsck", "--strict"], capture_output=True, text=True, env=GIT_ENV
        )
        assert fsck.returncode == 0, fsck.stderr


def test_prune_removes_artifacts_nobody_is_served(app, client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    from agnes.marketplace.packager import prune_caches

    analyst = bearer(auth.token(ANALYST))
    grant(client, admin_headers, "everyone", "acme/alpha")
    grant(client, admin_headers, "everyone", "acme/beta")
    install(client, analyst, "acme/alpha")
    old = client.get("/marketplace.zip", headers=analyst, buffered=True).headers["ETag"].strip('"')
    install(client, analyst, "acme/beta")
    new = client.get("/marketplace.zip", headers=analyst, buffered=True).headers["ETag"].strip('"')
    zips = Path(app.config["AGNES_DATA_DIR"]) / "marketplaces" / "zip-cache"
    assert {p.name for p in zips.iterdir()} == {f"{old}.zip", f"{new}.zip"}
    assert prune_caches()["removed"] == 0  # within the grace period
    assert prune_caches(grace=0)["removed"] == 1
    assert {p.name for p in zips.iterdir()} == {f"{new}.zip"}


def test_system_plugin_is_served_to_everyone(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    analyst = bearer(auth.token(ANALYST))
    result = client.post("/api/marketplaces/acme/plugins/gamma/system", headers=admin_headers).get_json()
    assert result["is_system"] and result["affected_groups"] >= 2
    assert served_names(client, analyst) == ["acme-gamma"]
    newcomer = bearer(auth.token("newcomer@example.com"))
    assert served_names(client, newcomer) == ["acme-gamma"]
    response = client.delete("/api/marketplace/curated/acme/gamma/install", headers=analyst)
    assert response.status_code == 409 and response.get_json()["error"] == "cannot_uninstall_system_plugin"
    grants = client.get("/api/admin/grants", headers=admin_headers).get_json()["grants"]
    everyone = next(g for g in grants if g["group_id"] == "everyone" and g["resource_id"] == "acme/gamma")
    refused = client.delete(f"/api/admin/grants/{everyone['id']}", headers=admin_headers)
    assert refused.status_code == 409 and refused.get_json()["error"] == "cannot_revoke_system_grant"
    team = new_group(client, admin_headers, "Later team", ANALYST)  # new groups get system grants too
    team_grants = client.get("/api/admin/grants", query_string={"group_id": team}, headers=admin_headers)
    assert [g["resource_id"] for g in team_grants.get_json()["grants"]] == ["acme/gamma"]
    assert client.delete(f"/api/admin/groups/{team}", headers=admin_headers).status_code == 204  # cascade is fine
    client.delete("/api/marketplaces/acme/plugins/gamma/system", headers=admin_headers)  # unmark: flag only
    assert client.delete(f"/api/admin/grants/{everyone['id']}", headers=admin_headers).status_code == 204


# -- git over smart HTTP, with real git against a live server -------------------------------------


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, timeout=120)


def test_git_clone_push_and_bad_token(live_server, client, auth, admin_headers, market, tmp_path):  # type: ignore[no-untyped-def]
    token = auth.token(ANALYST)
    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, bearer(token), "acme/alpha")
    host = live_server.url.removeprefix("http://")
    url = f"http://x:{token}@{host}/marketplace.git"
    clone = _git("clone", "-q", url, str(tmp_path / "clone"))
    assert clone.returncode == 0, clone.stderr
    files = sorted(
        str(p.relative_to(tmp_path / "clone"))
        for p in (tmp_path / "clone").rglob("*")
        if p.is_file() and ".git" not in p.parts
    )
    zip_files = sorted(zip_members(client.get("/marketplace.zip", headers=bearer(token), buffered=True).data))
    assert files == zip_files
    assert _downloads("git") == 1  # a fetch is a download: audited
    shallow = _git("clone", "-q", "--depth", "1", url, str(tmp_path / "shallow"))
    assert shallow.returncode == 0, shallow.stderr
    # a change shows up through a fetch inside the shallow clone (shallow lines, no deepen)
    install(client, bearer(token), "acme/alpha")
    grant(client, admin_headers, "everyone", "acme/beta")
    install(client, bearer(token), "acme/beta")
    fetch = _git("fetch", "-q", "origin", cwd=tmp_path / "shallow")
    assert fetch.returncode == 0, fetch.stderr
    assert _git("reset", "-q", "--hard", "FETCH_HEAD", cwd=tmp_path / "shallow").returncode == 0
    assert (tmp_path / "shallow" / "plugins" / "acme-beta").is_dir()

    bad = _git("clone", "-q", f"http://x:wrong@{host}/marketplace.git", str(tmp_path / "bad"))
    assert bad.returncode != 0 and "Authentication failed" in bad.stderr
    _git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
        cwd=tmp_path / "clone",
    )
    push = _git("push", "-q", "origin", "HEAD:main", cwd=tmp_path / "clone")
    assert push.returncode != 0 and "403" in push.stderr


def test_git_endpoint_answers_401_with_basic_challenge(client):  # type: ignore[no-untyped-def]
    response = client.get("/marketplace.git/info/refs?service=git-upload-pack")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="agnes-marketplace"'
    bad = base64.b64encode(b"x:agnes_pat_nope").decode()
    assert (
        client.get(
            "/marketplace.git/info/refs?service=git-upload-pack", headers={"Authorization": f"Basic {bad}"}
        ).status_code
        == 401
    )
    assert client.get("/marketplace.git/info/refs?service=git-receive-pack").status_code == 403
    assert client.get("/marketplace.git/HEAD").status_code == 404  # no dumb protocol


def test_trailing_slash_form_answers_marketplace_json(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    token = auth.token(ANALYST)
    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, bearer(token), "acme/alpha")
    anonymous = client.get("/marketplace.git/")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    basic = base64.b64encode(f"x:{token}".encode()).decode()
    doc = client.get(
        "/marketplace.git/", headers={"Authorization": f"Basic {basic}", "Accept": "application/json"}
    ).get_json()
    assert doc["name"] == "agnes"
    assert doc["plugins"][0]["source"] == {
        "source": "git-subdir",
        "url": f"http://x:{token}@localhost/marketplace.git",
        "path": "plugins/acme-alpha",
    }
    plain = client.get("/marketplace.git/", headers=bearer(token)).get_json()
    assert plain["plugins"][0]["source"]["url"] == "http://localhost/marketplace.git"


def test_info_refs_speaks_git_protocol(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    token = auth.token(ANALYST)
    basic = base64.b64encode(f"x:{token}".encode()).decode()
    response = client.get(
        "/marketplace.git/info/refs?service=git-upload-pack", headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200
    assert response.mimetype == "application/x-git-upload-pack-advertisement"
    body = response.data
    assert body.startswith(b"001e# service=git-upload-pack\n0000")
    assert b" HEAD\x00" in body and b"symref=HEAD:refs/heads/main" in body and b"filter" not in body


def test_hostile_upload_pack_bodies_get_a_400_or_413_with_a_reason(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    """Issue 10 item 5: these answered gunicorn's HTML 500 with a traceback before the fix."""
    import gzip

    token = auth.token(ANALYST)
    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, bearer(token), "acme/alpha")
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"x:{token}".encode()).decode(),
        "Content-Type": "application/x-git-upload-pack-request",
    }
    head = client.get("/marketplace.git/info/refs?service=git-upload-pack", headers=headers).data.split(b"0000")[1][
        4:44
    ]
    want = b"0032want " + head + b"\n"
    bodies = {
        "not pkt-lines": (b"zzzz garbage", {}, 400),
        "truncated pkt-line": (b"00ffwant", {}, 400),
        "bad gzip": (b"\x1f\x8bnot really gzip", {"Content-Encoding": "gzip"}, 400),
        "truncated gzip": (gzip.compress(want + b"0000")[:-6], {"Content-Encoding": "gzip"}, 400),
        "huge": (b"0000" * 400_000, {}, 413),
        "gzip bomb": (gzip.compress(b"0" * 50_000_000), {"Content-Encoding": "gzip"}, 413),
        "empty": (b"", {}, 400),
    }
    for name, (body, extra, status) in bodies.items():
        response = client.post("/marketplace.git/git-upload-pack", data=body, headers={**headers, **extra})
        assert response.status_code == status, (name, response.status_code, response.data[:200])
        assert response.mimetype == "text/plain" and b"Traceback" not in response.data, name
    # Well-framed but wanting what we do not have: a git protocol error (ERR pkt-line), not a 500.
    odd = client.post("/marketplace.git/git-upload-pack", data=b"0032want " + b"f" * 40 + b"\n0000", headers=headers)
    assert odd.status_code == 200 and b"ERR upload-pack" in odd.data
    assert client.post("/marketplace.git/git-upload-pack", data=b"0009want\n0000", headers=headers).status_code == 200
    # A real request (gzipped, as git sends large ones) still gets the pack.
    good = client.post(
        "/marketplace.git/git-upload-pack",
        data=gzip.compress(want + b"0000" + b"0009done\n"),
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert good.status_code == 200 and b"PACK" in good.data


# -- repeats answered without the state store (agnes.marketplace.fastpath) -----------------------


def _audit_count(action: str) -> int:
    from agnes.state import state_store

    with state_store().read() as con:
        return con.execute("SELECT count(*) FROM audit_log WHERE action = ?", [action]).fetchone()[0]


def _download_rows() -> list[dict[str, object]]:
    import json

    from agnes.state import state_store

    with state_store().read() as con:
        rows = con.execute(
            "SELECT user_id, resource, params, client_kind FROM audit_log WHERE action = 'marketplace.download'"
            " ORDER BY timestamp"
        ).fetchall()
    return [{"user_id": r[0], "resource": r[1], "params": json.loads(r[2]), "client_kind": r[3]} for r in rows]


def _downloads(form: str) -> int:
    return sum(1 for row in _download_rows() if row["params"]["form"] == form)


def test_each_served_form_is_resolved_and_audited_the_same_way(  # type: ignore[no-untyped-def]
    live_server, client, auth, admin_headers, market, tmp_path
):
    """ZIP, git and the marketplace.json form share one resolve-and-audit path: one row each, same fields."""
    token = auth.token(ANALYST)
    user_id = auth.user(ANALYST)
    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, bearer(token), "acme/alpha")
    zipped = client.get("/marketplace.zip", headers=bearer(token), buffered=True)
    assert zipped.status_code == 200
    etag = zipped.headers["ETag"].strip('"')
    basic = base64.b64encode(f"x:{token}".encode()).decode()
    assert client.get("/marketplace.git/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    host = live_server.url.removeprefix("http://")
    clone = _git("clone", "-q", f"http://x:{token}@{host}/marketplace.git", str(tmp_path / "clone"))
    assert clone.returncode == 0, clone.stderr
    rows = _download_rows()
    assert sorted(row["params"]["form"] for row in rows) == ["git", "json", "zip"]
    for row in rows:
        assert row["user_id"] == user_id and row["resource"] == f"marketplace:{etag}"
        assert set(row["params"]) == {"form", "plugins"} and row["params"]["plugins"] == 1
    # repeats of each form within the audit window add nothing
    client.get("/marketplace.zip", headers=bearer(token), buffered=True)
    client.get("/marketplace.git/", headers={"Authorization": f"Basic {basic}"})
    assert len(_download_rows()) == 3


def test_repeats_end_at_once_when_access_changes(client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    from agnes import people
    from agnes.auth.pat import list_pats, revoke_pat

    grant_id = grant(client, admin_headers, "everyone", "acme/alpha")
    token = auth.token(ANALYST)
    analyst = bearer(token)
    install(client, analyst, "acme/alpha")
    first = client.get("/marketplace.zip", headers=analyst, buffered=True)
    etag = first.headers["ETag"]
    for _ in range(3):  # repeats: same bytes, one audit row for the user and ETag
        again = client.get("/marketplace.zip", headers=analyst, buffered=True)
        assert again.status_code == 200 and again.data == first.data
        assert client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}).status_code == 304
    assert _audit_count("marketplace.download") == 1
    # a grant revoked: the very next poll sees the new (empty) set
    assert client.delete(f"/api/admin/grants/{grant_id}", headers=admin_headers).status_code == 204
    changed = client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}, buffered=True)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    etag = changed.headers["ETag"]
    assert client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}).status_code == 304
    # the user deactivated: 401 at once, for the ZIP and for git
    user_id = auth.user(ANALYST)
    people.set_user_active(user_id, False, actor_id=auth.user("admin@example.com"))
    assert client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}).status_code == 401
    basic = base64.b64encode(f"x:{token}".encode()).decode()
    assert (
        client.get(
            "/marketplace.git/info/refs?service=git-upload-pack", headers={"Authorization": f"Basic {basic}"}
        ).status_code
        == 401
    )
    people.set_user_active(user_id, True, actor_id=auth.user("admin@example.com"))
    assert client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}).status_code == 304
    revoke_pat(list_pats(user_id)[0].id, owner_id=user_id)
    assert client.get("/marketplace.zip", headers={**analyst, "If-None-Match": etag}).status_code == 401


def test_missing_files_never_produce_a_partial_artifact(app, client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    import shutil

    from agnes.models import marketplaces
    from agnes.state import state_store

    token = auth.token(ANALYST)
    grant(client, admin_headers, "everyone", "acme/alpha")
    install(client, bearer(token), "acme/alpha")
    with state_store().read() as con:
        content = Path(app.config["AGNES_DATA_DIR"]) / marketplaces.get_plugin(con, "acme", "alpha").content_dir
    shutil.rmtree(content)
    response = client.get("/marketplace.zip", headers={**bearer(token), "Accept": "application/json"}, buffered=True)
    assert response.status_code == 503 and response.get_json()["error"] == "marketplace_unavailable"
    basic = base64.b64encode(f"x:{token}".encode()).decode()
    refs = client.get("/marketplace.git/info/refs?service=git-upload-pack", headers={"Authorization": f"Basic {basic}"})
    assert refs.status_code == 503
    caches = Path(app.config["AGNES_DATA_DIR"]) / "marketplaces"
    assert not list((caches / "zip-cache").glob("*.zip")) and not list((caches / "git-cache").glob("*.git"))
    sync_now("acme")  # a re-sync restores the files
    assert client.get("/marketplace.zip", headers=bearer(token), buffered=True).status_code == 200


def test_batch_etags_match_per_user_resolution(app, client, auth, admin_headers, market):  # type: ignore[no-untyped-def]
    from agnes.marketplace import resolver
    from agnes.models import groups
    from agnes.state import state_store

    for email in ("a@example.com", "b@example.com", "c@example.com"):  # c: nothing served, the empty ETag
        auth.user(email)
    team = new_group(client, admin_headers, "Team", "b@example.com")
    grant(client, admin_headers, "everyone", "acme/alpha")
    grant(client, admin_headers, team, "acme/beta")
    install(client, bearer(auth.token("a@example.com")), "acme/alpha")
    b = bearer(auth.token("b@example.com"))
    install(client, b, "acme/alpha")
    install(client, b, "acme/beta")
    data_dir = Path(app.config["AGNES_DATA_DIR"])
    with state_store().read() as con:
        user_ids = [r[0] for r in con.execute("SELECT id FROM users WHERE active").fetchall()]
        one_by_one = {resolver.compute(con, u, groups.list_user_group_ids(con, u), data_dir).etag for u in user_ids}
        batch = resolver.all_served_etags(con, data_dir)
    assert batch == one_by_one and len(batch) == 3


@pytest.mark.parametrize("level", ["10", "-1"])
def test_a_pack_level_zlib_cannot_use_is_refused_at_start(app_config, level):  # type: ignore[no-untyped-def]
    from agnes import create_app

    with pytest.raises(ValueError, match=f"AGNES_MARKETPLACE_PACK_LEVEL must be between 0 and 9, got {level}"):
        create_app({**app_config, "AGNES_MARKETPLACE_PACK_LEVEL": level})

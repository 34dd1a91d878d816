"""The deployment in ``compose.yml`` runs: each Agnes service's command is started on this host
with the service's environment (web under gunicorn, worker, cron), the shared volume is one data
directory, Redis is the local server on the tests' database. The main job goes through them: a
fixture marketplace is registered, "Sync now" enqueues the sync, the worker process runs it, and a
real ``git clone`` of ``/marketplace.git`` through the web process gets the plugin. SIGTERM stops
each process within 10 s. (No container engine can pull images on our machines.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES_DIR, redis_url
from tests.deploy.processes import BIN, ROOT, Service, clean_env, free_port
from tests.marketplace.conftest import GIT_ENV, commit_all

pytestmark = pytest.mark.slow
COMPOSE = ROOT / "compose.yml"
PLUGINS = ("accessibility-compliance", "python-development", "pptx-deck-creation")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}`` and ``${NAME}`` substitution."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3)
        got = env.get(name, "")
        return got if got else (default or "")

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", one, value)


def compose_services(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The services of compose.yml with their environment interpolated (YAML merge keys applied)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for service in services.values():
        service["environment"] = {k: interpolate(str(v), env) for k, v in (service.get("environment") or {}).items()}
    return services


def host_argv(command: list[str]) -> list[str]:
    """A container command as this host runs it: the image's PATH starts with the virtualenv."""
    program, *args = command
    if program == "python":
        return [sys.executable, *args]
    return [str(BIN / program), *args]


def _http(method: str, url: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _fixture_marketplace(dest: Path) -> Path:
    """A git repository of the wshobson-agents fixture, its manifest cut to three local plugins."""
    shutil.copytree(FIXTURES_DIR / "marketplaces" / "wshobson-agents", dest)
    manifest_path = dest / ".claude-plugin" / "marketplace.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["plugins"] = [p for p in manifest["plugins"] if p["name"] in PLUGINS]
    manifest_path.write_text(json.dumps(manifest, indent=2))
    commit_all(dest, "import fixture")
    return dest


def test_compose_file_services_run_the_main_job(redis_conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    services = compose_services({})
    assert {"redis", "web", "worker", "cron"} <= set(services)
    port = free_port()
    volume = tmp_path / "volume"  # the agnes-data volume, shared by all three services
    running: dict[str, Service] = {}
    try:
        for name in ("web", "worker", "cron"):
            service = services[name]
            mounts = {str(v).split(":", 1)[0]: str(v).split(":", 1)[1] for v in service["volumes"]}
            environment = service["environment"]
            assert mounts == {"agnes-data": environment["AGNES_DATA_DIR"]}, f"{name}: data dir is not the volume"
            assert environment["REDIS_URL"].startswith("redis://redis:6379/")
            command = [str(part) for part in service["command"]]
            if name == "web":
                bind = command.index("--bind") + 1
                assert command[bind] == "0.0.0.0:8000" and "8000:8000" in [str(p) for p in service["ports"]]
                command[bind] = f"127.0.0.1:{port}"
            env = clean_env(
                **{
                    **environment,
                    # Only what differs on this host: the volume's path, Redis's address, the port.
                    "AGNES_DATA_DIR": str(volume),
                    "REDIS_URL": redis_url(),
                    "AGNES_BASE_URL": f"http://127.0.0.1:{port}",
                }
            )
            running[name] = Service(name, host_argv(command), env, tmp_path / f"{name}.log")

        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as ready:
                    assert json.loads(ready.read())["checks"]["jobs"] == "ok"
                break
            except OSError:
                assert time.monotonic() < deadline, running["web"].tail()
                assert running["web"].proc.poll() is None, running["web"].tail()
                time.sleep(0.3)
        running["worker"].wait_for_log(r"Listening on")
        running["cron"].wait_for_log(r"CronScheduler \S+: starting")

        token = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "create-token", "admin@example.com", "--name", "deploy"],
            cwd=ROOT,
            env=clean_env(AGNES_DATA_DIR=str(volume), REDIS_URL=redis_url(), AGNES_LOG_LEVEL="WARNING"),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout.strip()
        repo = _fixture_marketplace(tmp_path / "wsh")
        _http("POST", f"{base}/api/marketplaces", token, {"slug": "wsh", "name": "Workflows", "url": str(repo)})
        job = _http("POST", f"{base}/api/marketplaces/wsh/sync", token)["job"]  # "Sync now"
        deadline = time.monotonic() + 120
        while job["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, running["worker"].tail()
            time.sleep(0.3)
            job = _http("GET", f"{base}/api/jobs/{job['id']}", token)
        assert job["state"] == "finished", job
        assert "Sync marketplace wsh" in running["worker"].log_text()  # the worker process ran it
        plugins = {p["name"] for p in _http("GET", f"{base}/api/marketplaces/wsh/plugins", token)["plugins"]}
        assert plugins == set(PLUGINS)
        _http("POST", f"{base}/api/marketplaces/wsh/plugins/accessibility-compliance/system", token)

        clone = subprocess.run(
            ["git", "clone", "-q", f"http://x:{token}@127.0.0.1:{port}/marketplace.git", str(tmp_path / "clone")],
            env=GIT_ENV,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert clone.returncode == 0, clone.stderr + running["web"].tail()
        skill = tmp_path / "clone" / "plugins" / "wsh-accessibility-compliance" / "skills" / "wcag-audit-patterns"
        assert (skill / "SKILL.md").read_text().startswith("---")

        sent = {name: service.signal() for name, service in running.items()}
        took = {name: service.wait_exit(sent[name], timeout=10) for name, service in running.items()}
        codes = {name: service.proc.returncode for name, service in running.items()}
        assert codes == {"web": 0, "worker": 0, "cron": 0}, {n: s.tail() for n, s in running.items()}
        assert max(took.values()) < 10, took
    finally:
        for service in running.values():
            service.kill()


def test_docker_compose_config_accepts_the_file() -> None:
    """Where a compose client exists, it validates compose.yml (no engine needed)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        argv = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        argv = ["docker-compose"]
    else:
        pytest.skip("no docker compose client on this machine")
    done = subprocess.run([*argv, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_image_installs_like_the_readme() -> None:
    """The Dockerfile installs with the README's install command and runs the compose web command."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    installs = re.findall(r"^RUN (make install\b.*)$", dockerfile, re.M)
    assert installs == ["make install"], "the Dockerfile must install with 'make install', as the README does"
    assert "make install" in readme
    web = compose_services({})["web"]["command"]
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert cmd == web, "the image's default command and compose's web command should be the same"

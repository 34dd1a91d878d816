"""The README's quick start works: the production entry point (gunicorn wsgi:app, embedded mode)
starts, the seed admin asks for a sign-in link, finds it in the server log and reaches the admin pages."""

from __future__ import annotations

import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_quick_start_server_signs_in_seed_admin(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGNES_", "REDIS_URL"))}
    env.update(
        AGNES_DATA_DIR=str(tmp_path / "data"),
        AGNES_SEED_ADMIN_EMAIL="admin@example.com",
        AGNES_BASE_URL=base,
        PYTHONPATH=str(ROOT),
    )
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "1",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        deadline = time.monotonic() + 30
        while True:
            try:
                opener.open(f"{base}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("server did not start:\n" + log_path.read_text())
                time.sleep(0.2)

        def csrf(html: bytes) -> str:
            return BeautifulSoup(html, "html.parser").find("input", {"name": "csrf_token"})["value"]

        login_page = opener.open(f"{base}/login").read()
        data = urllib.parse.urlencode({"email": "admin@example.com", "csrf_token": csrf(login_page)}).encode()
        opener.open(f"{base}/login", data=data)
        link = None
        for _ in range(50):
            found = re.search(r"SIGN-IN LINK for admin@example.com .*?: (\S+)", log_path.read_text())
            if found:
                link = found.group(1)
                break
            time.sleep(0.1)
        assert link and link.startswith(f"{base}/auth/link/"), log_path.read_text()
        confirm = opener.open(link).read()
        opener.open(link, data=urllib.parse.urlencode({"csrf_token": csrf(confirm)}).encode())
        groups = BeautifulSoup(opener.open(f"{base}/admin/groups").read(), "html.parser")
        assert [a.text for a in groups.select("#groups-table tbody a")][:2] == ["Admin", "Everyone"]
    finally:
        server.terminate()
        server.wait(10)

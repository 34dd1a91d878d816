"""``PORT=5077 make run`` as a new user runs it: the server logs a sign-in link for the port it
listens on, and that link signs the admin in. Links follow the address the server is bound to,
never a request's Host header; an explicit AGNES_BASE_URL wins and is announced at start-up."""

from __future__ import annotations

import http.cookiejar
import logging
import os
import re
import signal
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from agnes import create_app
from tests.deploy.processes import ROOT, Service, clean_env, free_port

pytestmark = pytest.mark.slow


def _csrf(html: bytes) -> str:
    return BeautifulSoup(html, "html.parser").find("input", {"name": "csrf_token"})["value"]


def _sign_in_link(opener, base: str, server: Service, host_header: str | None = None) -> str:  # type: ignore[no-untyped-def]
    before = len(re.findall(r"SIGN-IN LINK", server.log_text()))
    token = _csrf(opener.open(f"{base}/login", timeout=30).read())
    request = urllib.request.Request(
        f"{base}/login", data=urllib.parse.urlencode({"email": "admin@example.com", "csrf_token": token}).encode()
    )
    if host_header:
        request.add_header("Host", host_header)
    opener.open(request, timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        links = re.findall(r"SIGN-IN LINK for admin@example.com .*?: (\S+)", server.log_text())
        if len(links) > before:
            return links[-1]
        time.sleep(0.1)
    raise AssertionError(f"no sign-in link logged:\n{server.tail()}")


def test_port_make_run_logs_a_link_that_signs_the_admin_in(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        PORT=str(port),
        AGNES_DATA_DIR=str(tmp_path / "data"),
        AGNES_SEED_ADMIN_EMAIL="admin@example.com",
        # The virtualenv running these tests stands for the one make creates.
        VENV=sys.prefix,
    )
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "VIRTUAL_ENV"):
        env.pop(name, None)
    server = Service("make run", ["make", "--no-print-directory", "run"], env, tmp_path / "run.log", cwd=ROOT)
    try:
        server.wait_for_log(rf"Listening at: http://127\.0\.0\.1:{port}\b", timeout=300)
        server.wait_for_log(r"AGNES_BASE_URL is unset: sign-in links and CLI hints use the address")
        base = f"http://127.0.0.1:{port}"
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        # A forged Host header must not steer where the link points.
        forged = _sign_in_link(opener, base, server, host_header="attacker.example")
        assert forged.startswith(f"{base}/auth/link/"), forged
        link = _sign_in_link(opener, base, server)
        assert link.startswith(f"{base}/auth/link/"), link
        confirm = opener.open(link, timeout=30).read()
        opener.open(link, data=urllib.parse.urlencode({"csrf_token": _csrf(confirm)}).encode(), timeout=30)
        groups = BeautifulSoup(opener.open(f"{base}/admin/groups", timeout=30).read(), "html.parser")
        assert [a.text for a in groups.select("#groups-table tbody a")][:2] == ["Admin", "Everyone"]
        me = BeautifulSoup(opener.open(f"{base}/me", timeout=30).read(), "html.parser").get_text()
        assert f"agnes login --server {base}" in me  # the CLI hint follows the port too
        # Ctrl+C in the terminal signals make and gunicorn together (one process group).
        sent = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        took = server.wait_exit(sent, timeout=10)
        assert took < 10
    finally:
        server.kill()


def test_a_set_base_url_is_announced_and_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="agnes.urls")
    app = create_app(
        {"TESTING": True, "AGNES_DATA_DIR": str(tmp_path / "data"), "AGNES_BASE_URL": "https://agnes.example.com/"}
    )
    assert "Sign-in links and CLI hints use AGNES_BASE_URL=https://agnes.example.com" in caplog.text
    from agnes.urls import base_url

    with app.test_request_context("/", base_url="http://127.0.0.1:9999"):
        assert base_url() == "https://agnes.example.com"
    caplog.clear()
    unset = create_app({"TESTING": True, "AGNES_DATA_DIR": str(tmp_path / "other"), "AGNES_BASE_URL": ""})
    assert "AGNES_BASE_URL is unset" in caplog.text
    with unset.test_request_context("/"):  # no socket in a test request: PORT, else 5000
        assert base_url() == f"http://127.0.0.1:{os.environ.get('PORT') or 5000}"

"""Shared fixtures: a migrated app on a temp data dir, clients, sign-in helpers, real Redis, live
servers, the CLI as a subprocess and headless Chromium. Each area's own fixtures live in the
``conftest.py`` of its folder (``tests/marketplace/``, ``tests/data/``, ...)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agnes import create_app

# Redis database index the tests own (flushed around each test that uses it). Override when
# several checkouts run their suites at once on one machine.
TEST_REDIS_DB = int(os.environ.get("AGNES_TEST_REDIS_DB", "13"))
REDIS_BASE = os.environ.get("AGNES_TEST_REDIS", "redis://127.0.0.1:6379")
# The checkout's root (where agnes/, cli/ and worker.py are); subprocesses run from it.
ROOT = Path(__file__).resolve().parents[1]
# Test inputs carried by the repository (origin and licence of each: tests/fixtures/README.md).
FIXTURES_DIR = ROOT / "tests" / "fixtures"


def redis_url() -> str:
    return f"{REDIS_BASE}/{TEST_REDIS_DB}"


def missing(reason: str, *, installed_by_ci: bool = True) -> None:
    """A part the machine lacks (Redis, PostgreSQL): the test skips with ``reason``, or fails under
    CI (``CI`` set) for a part .ci/run installs, where a skip would hide a broken machine."""
    if installed_by_ci and os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, object]:
    """Settings for the test app; tests override keys before ``app`` is built."""
    return {
        "TESTING": True,
        "AGNES_DATA_DIR": str(tmp_path / "data"),
        "AGNES_SEED_ADMIN_EMAIL": "admin@example.com",
        "AGNES_BASE_URL": "http://localhost",
        "REDIS_URL": "",
        "AGNES_LOG_LEVEL": "WARNING",
        "AGNES_OTLP_FLUSH_MS": 0,  # the OTLP intake commits before answering: tests read at once
        # The table fixtures (tests/data/conftest.py ``folder``) live here; nothing else is readable.
        "AGNES_DATA_SOURCE_DIRS": [str(tmp_path / "files")],
    }


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context (and so its own ``g``).

    The ``app`` fixture keeps an app context pushed so tests can use the state store; without
    this, Flask would reuse that context for each request and ``g`` (principal, cached CSRF
    token, audit fields) would leak from one request, or one client, into the next.
    """

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(app_config: dict[str, object]) -> Iterator[Flask]:
    application = create_app(dict(app_config))
    application.test_client_class = IsolatedClient
    ctx = application.app_context()
    ctx.push()
    yield application
    ctx.pop()
    backend = application.extensions["agnes_jobs"]
    if hasattr(backend, "wait_idle"):
        backend.wait_idle()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def redis_conn():  # type: ignore[no-untyped-def]
    """A real Redis connection on the tests' own database index, flushed before and after."""
    from redis import Redis

    conn = Redis.from_url(redis_url())
    try:
        conn.ping()
    except Exception as exc:  # pragma: no cover - make test and CI start Redis
        missing(f"Redis is not reachable at {redis_url()} ({exc}): install redis-server (make test starts it)")
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def rq_app(app_config: dict[str, object], redis_conn) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    """Like ``app`` but with jobs on the real Redis (RQ backend)."""
    application = create_app({**app_config, "REDIS_URL": redis_url()})
    application.test_client_class = IsolatedClient
    ctx = application.app_context()
    ctx.push()
    yield application
    ctx.pop()


def run_rq_jobs(application: Flask) -> None:
    """Run every queued RQ job in-process (SimpleWorker, burst) inside the app context."""
    from rq import SimpleWorker

    backend = application.extensions["agnes_jobs"]
    SimpleWorker([backend.queue], connection=backend.connection).work(burst=True)


def session_cookie(user_id: str) -> dict[str, str]:
    """The session values of a signed-in browser (a new server-side session for ``user_id``)."""
    from agnes.auth import start_session
    from agnes.state import state_store

    with state_store().write() as con:
        return start_session(con, user_id)


class Auth:
    """Sign-in helper for the test client (``auth.login(email)``, ``auth.token(email)``)."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client

    def user(self, email: str, *, admin: bool = False, name: str = "") -> str:
        """Create (or reuse) a user; returns the id."""
        from agnes import people
        from agnes.models import users
        from agnes.state import state_store

        with state_store().read() as con:
            existing = users.get_user_by_email(con, email)
        user_id = existing.id if existing else people.create_user(email, name).id
        if admin:
            from agnes import signals
            from agnes.models import groups

            with state_store().write() as con:
                if groups.add_member(con, "admin", user_id):
                    signals.membership_changed.send(None, con=con, user_id=user_id, group_id="admin")
        return user_id

    def login(self, email: str = "analyst@example.com", *, admin: bool = False) -> str:
        user_id = self.user(email, admin=admin)
        with self.client.session_transaction() as sess:
            sess.update(session_cookie(user_id))
        return user_id

    def logout(self) -> None:
        with self.client.session_transaction() as sess:
            sess.clear()

    def token(self, email: str = "analyst@example.com", *, admin: bool = False, days: int | None = 30) -> str:
        """A fresh PAT for the user (created directly in the state store)."""
        from agnes.auth.pat import create_pat

        user_id = self.user(email, admin=admin)
        _, raw = create_pat(user_id, "test", days)
        return raw


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> Auth:
    return Auth(app, client)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """Fetch a page and return the CSRF token embedded in it."""
    from bs4 import BeautifulSoup

    html = client.get(path).data
    field = BeautifulSoup(html, "html.parser").find("input", {"name": "csrf_token"})
    assert field is not None, f"no csrf_token on {path}"
    return str(field["value"])


class LiveServer:
    """An app served on a loopback port by a threaded werkzeug server (for real clients)."""

    def __init__(self, application: Flask) -> None:
        import threading

        from werkzeug.serving import make_server

        self.app = application
        self.server = make_server("127.0.0.1", 0, application, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The ``app`` fixture served on http://127.0.0.1:<port> (``live_server.url``)."""
    server = LiveServer(app)
    app.config["AGNES_BASE_URL"] = server.url
    yield server
    server.stop()


@pytest.fixture
def rq_live_server(rq_app: Flask) -> Iterator[LiveServer]:
    """The ``rq_app`` fixture (jobs on real Redis) served on a loopback port."""
    server = LiveServer(rq_app)
    rq_app.config["AGNES_BASE_URL"] = server.url
    yield server
    server.stop()


def cli_env(server_url: str, token: str, home: Path) -> dict[str, str]:
    """Environment for running ``python -m cli.main`` against a live server from a temp HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGNES_")}
    env.update(
        HOME=str(home),
        AGNES_CONFIG_DIR=str(home / ".config" / "agnes"),
        AGNES_URL=server_url,
        AGNES_TOKEN=token,
        PYTHONPATH=str(ROOT),
        PYTHONIOENCODING="utf-8",
    )
    return env


def run_cli(args: list[str], env: dict[str, str], *, cwd: Path | None = None, timeout: float = 120):  # type: ignore[no-untyped-def]
    """Run the agnes CLI of this checkout as a subprocess; returns CompletedProcess (text)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


# -- headless Chromium (Playwright driving Debian's /usr/bin/chromium, never a downloaded one) ---

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots of the browser tests
TIMEOUT_MS = 15_000

# Records CSP violations of each document (init scripts are injected by the browser, not the page,
# so the policy does not block this one).
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


class BrowserLog:
    """Console errors, page errors and failed responses seen by one page."""

    def __init__(self) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.bad_responses: list[str] = []
        self.requests: list[tuple[float, str]] = []

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda msg: msg.type == "error" and self.console_errors.append(f"{msg.text} ({msg.location.get('url')})"),
        )
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("response", lambda r: r.status >= 400 and self.bad_responses.append(f"{r.status} {r.url}"))
        page.on("request", lambda r: self.requests.append((time.monotonic(), r.url)))

    def assert_clean(self, page: Any) -> None:
        violations = page.evaluate("window.__cspViolations || []")
        assert violations == [], f"CSP violations on {page.url}: {violations}"
        assert self.bad_responses == [], f"failed responses: {self.bad_responses}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"page errors: {self.page_errors}"


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()

"""Agnes settings: every key, its default and what it does, documented once.

Values come from (in order of precedence) the ``config`` mapping passed to
``create_app``, the process environment, and the secrets overlay file
``<AGNES_DATA_DIR>/state/.env_overlay`` written by the admin UI. ``docs/configuration.md``
is checked against :data:`SETTINGS` by ``tests/test_docs.py``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Setting:
    """One configuration key.

    Attributes:
        name: environment variable name, also the Flask config key.
        default: value used when the variable is unset (``None`` = unset).
        doc: one line shown in docs/configuration.md.
        kind: ``str``, ``int``, ``bool`` or ``list`` (comma separated).
        secret: never printed, logged or stored in the database.
        bounds: smallest and largest value an ``int`` may take (None = any).
        choices: the values a ``str`` may take (None = any text).
    """

    name: str
    default: Any
    doc: str
    kind: str = "str"
    secret: bool = False
    bounds: tuple[int, int] | None = None
    choices: tuple[str, ...] | None = None


SETTINGS: tuple[Setting, ...] = (
    Setting("AGNES_DATA_DIR", "./agnes-data", "Directory holding all state (state store, clones, extracts, sessions)."),
    Setting(
        "AGNES_SECRET_KEY",
        None,
        "Key that signs session cookies and sign-in links; generated once into state/secret_key (mode 600) when unset.",
        secret=True,
    ),
    Setting(
        "AGNES_BASE_URL",
        "",
        "Public URL of this server, used in emailed links and CLI hints; unset, the address each request arrives"
        " on (http://127.0.0.1:$PORT under make run). Set it behind a reverse proxy.",
    ),
    Setting("REDIS_URL", "", "Redis for RQ jobs; empty runs jobs in-process (embedded mode)."),
    Setting("AGNES_QUEUE", "agnes", "Name of the RQ queue jobs are sent to."),
    Setting("AGNES_SEED_ADMIN_EMAIL", "", "Email of a user created at start-up and put in the Admin group."),
    Setting("AGNES_LOG_LEVEL", "INFO", "Python logging level of the server and worker."),
    Setting(
        "AGNES_PROXY_HOPS",
        0,
        "Reverse proxies in front of Agnes whose X-Forwarded-For/-Proto/-Host headers are trusted.",
        kind="int",
    ),
    Setting("AGNES_MAX_UPLOAD_MB", 200, "Largest request body accepted, in megabytes.", kind="int"),
    Setting(
        "AGNES_SESSION_HOURS",
        336,
        "Lifetime of a browser session, in hours (kept server-side: sign-out, deactivation and Sign out"
        " everywhere on /me end it at once).",
        kind="int",
    ),
    Setting("AGNES_MAGIC_LINK_TTL", 3600, "Seconds a sign-in link stays valid (single use).", kind="int"),
    Setting("AGNES_PAT_DEFAULT_DAYS", 90, "Default lifetime of a new personal access token, in days.", kind="int"),
    Setting("AGNES_PAT_MAX_DAYS", 3650, "Longest lifetime an access token may be given, in days.", kind="int"),
    Setting("AGNES_JOB_TIMEOUT", 1800, "Default job timeout, in seconds.", kind="int"),
    Setting(
        "AGNES_WORKER_GRACE",
        7,
        "Seconds a running job may go on after a worker gets SIGTERM; then it is stopped and requeued for the"
        " next worker. Keep it below the orchestrator's kill timeout (10 s for docker compose).",
        kind="int",
    ),
    Setting(
        "AGNES_DATA_SOURCE_DIRS",
        [],
        "Comma-separated server directories table files may be read from (after symlinks, never inside"
        " AGNES_DATA_DIR); empty turns local table files off. URLs are not affected.",
        kind="list",
    ),
    Setting(
        "AGNES_JOB_HEARTBEAT",
        10,
        "Seconds between a worker's heartbeats for a running job; a job whose worker died is retried"
        " once and recorded as interrupted after about three missed heartbeats.",
        kind="int",
    ),
    Setting("AGNES_SYNC_TIMEOUT", 3600, "Longest a table sync job may run, in seconds.", kind="int"),
    Setting(
        "AGNES_REMOTE_MAX_SCAN_BYTES",
        10_000_000_000,
        "Most bytes the source may estimate a query of remote tables reads (EXPLAIN); above it the query"
        " is refused with 400 remote_scan_too_large. 0 turns the guard off.",
        kind="int",
    ),
    Setting(
        "AGNES_REMOTE_STATEMENT_TIMEOUT",
        30,
        "Longest a query or sample may run at a remote table's source, in seconds.",
        kind="int",
        bounds=(1, 3600),
    ),
    Setting(
        "AGNES_REMOTE_SNAPSHOT_TIMEOUT",
        3600,
        "Longest the source may take to stream one snapshot of a remote table, in seconds.",
        kind="int",
        bounds=(1, 86400),
    ),
    Setting(
        "AGNES_DOWNLOAD_BLOCK_KB",
        1024,
        "Block size used when streaming a parquet download without sendfile, in KiB.",
        kind="int",
    ),
    Setting("SMTP_HOST", "", "SMTP server for sign-in emails; empty writes the link to the server log instead."),
    Setting("SMTP_PORT", 587, "SMTP port.", kind="int"),
    Setting("SMTP_USER", "", "SMTP user name (optional)."),
    Setting("SMTP_PASSWORD", "", "SMTP password (optional).", secret=True),
    Setting("SMTP_FROM", "agnes@localhost", "Sender address of sign-in emails."),
    Setting("SMTP_STARTTLS", True, "Use STARTTLS when talking to the SMTP server.", kind="bool"),
    Setting(
        "AGNES_NOTIFY_EMAIL",
        True,
        "Email admins about new feedback reports and the health pulse turning red (needs SMTP_HOST); at most one"
        " message per admin per 5 minutes, the rest in a digest.",
        kind="bool",
    ),
    Setting(
        "AGNES_NOTIFY_WEBHOOK_URL",
        "",
        "URL that receives the same notifications as JSON POSTs (a chat webhook, say); empty sends none.",
        secret=True,
    ),
    Setting("GOOGLE_CLIENT_ID", "", "OAuth client id; Google sign-in is offered when id and secret are set."),
    Setting("GOOGLE_CLIENT_SECRET", "", "OAuth client secret.", secret=True),
    Setting(
        "AGNES_GOOGLE_DOMAINS",
        [],
        "Comma-separated email domains allowed to sign in with Google (empty allows any verified address).",
        kind="list",
    ),
    Setting(
        "AGNES_GOOGLE_AUTHORIZE_URL",
        "https://accounts.google.com/o/oauth2/v2/auth",
        "OAuth authorization endpoint (override only for testing).",
    ),
    Setting(
        "AGNES_GIT_URL_REWRITES",
        [],
        "Comma-separated prefix=replacement rules applied to git URLs before fetching (like git's"
        " url.<base>.insteadOf), e.g. https://github.com/=https://git.internal/mirror/ for mirrors.",
        kind="list",
    ),
    Setting(
        "AGNES_MARKETPLACE_PACK_LEVEL",
        0,
        "zlib level (0-9) of the served git pack: 0 stores objects uncompressed, which clones fastest"
        " on a LAN (git's index-pack does less work); 1 sends about 0.6x the bytes, better below"
        " about 500 Mbit/s (docs/marketplace.md).",
        kind="int",
        bounds=(0, 9),
    ),
    Setting(
        "AGNES_GIT_TIMEOUT", 120, "Network timeout of one git fetch during a marketplace sync, in seconds.", kind="int"
    ),
    Setting(
        "AGNES_PLUGIN_MAX_MB",
        50,
        "Largest curated plugin served, in megabytes of files; a bigger one is marked unavailable with the reason.",
        kind="int",
    ),
    Setting(
        "AGNES_PLUGIN_MAX_FILES",
        5000,
        "Most files a curated plugin may have; one with more is marked unavailable with the reason.",
        kind="int",
    ),
    Setting(
        "AGNES_SESSION_MAX_BYTES",
        52428800,
        "Largest session transcript accepted by PUT /api/sessions, in bytes counted decompressed (50 MB).",
        kind="int",
    ),
    Setting(
        "AGNES_USAGE_RETENTION_DAYS",
        0,
        "Usage events older than this many days are deleted by the daily prune (rollups stay); 0 keeps them all.",
        kind="int",
    ),
    Setting(
        "ANTHROPIC_API_KEY",
        "",
        "Key of the Anthropic API for agnes admin ask (read from the environment or state/.env_overlay).",
        secret=True,
    ),
    Setting("ANTHROPIC_BASE_URL", "", "Base URL of the Anthropic API; empty uses Anthropic's (set it for a proxy)."),
    Setting("AGNES_ASK_MODEL", "claude-haiku-4-5", "Model that turns agnes admin ask questions into SQL."),
    Setting(
        "AGNES_FLEA_MAX_UPLOAD_MB",
        20,
        "Largest flea-market upload (a ZIP or one .md), MB; refused while streaming.",
        kind="int",
        bounds=(1, 2048),
    ),
    Setting(
        "AGNES_FLEA_APPROVAL",
        "auto",
        "auto: a safe review verdict publishes a flea-market version; admin: it waits for an administrator.",
        choices=("auto", "admin"),
    ),
    Setting("AGNES_FLEA_REVIEW_MODEL", "claude-sonnet-4-5", "Model that reviews flea-market uploads."),
    Setting(
        "AGNES_FLEA_REVIEW_TIMEOUT",
        120,
        "Seconds one flea-market review request may take (two retries).",
        kind="int",
        bounds=(1, 600),
    ),
    Setting("AGNES_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token", "OAuth token endpoint."),
    Setting(
        "AGNES_GOOGLE_GROUPS",
        False,
        "Mirror Google Workspace groups as Agnes groups (at sign-in, nightly, on demand); see docs/google-groups.md.",
        kind="bool",
    ),
    Setting(
        "AGNES_GOOGLE_GROUP_PREFIX",
        "",
        "Only Workspace groups whose email starts with this are mirrored (e.g. agnes-); empty mirrors every group.",
    ),
    Setting(
        "AGNES_GOOGLE_ADMIN_GROUP",
        "",
        "Email of the Workspace group whose members are put in Agnes's Admin group (source google_sync).",
    ),
    Setting(
        "AGNES_GOOGLE_DIRECTORY_URL",
        "https://admin.googleapis.com/admin/directory/v1",
        "Base URL of the Admin SDK Directory API (override only for testing).",
    ),
    Setting(
        "AGNES_GOOGLE_DIRECTORY_SUBJECT",
        "",
        "A Workspace administrator the service account acts as (domain-wide delegation) when reading groups.",
    ),
    Setting("AGNES_GOOGLE_CUSTOMER", "my_customer", "Workspace customer whose groups the nightly sync lists."),
    Setting(
        "AGNES_GOOGLE_SERVICE_ACCOUNT_KEY",
        "",
        "The service account's JSON key on one line. Read from the environment or state/.env_overlay (mode 600),"
        " never stored in the database or logged.",
        secret=True,
    ),
    Setting(
        "AGNES_GOOGLE_SYNC_MAX_REMOVAL_PCT",
        25,
        "A directory sync that would remove more than this percentage of the Google memberships writes nothing.",
        kind="int",
    ),
    Setting(
        "AGNES_OTEL_HEADERS_HELPER",
        "agnes otel-headers",
        "Command Claude Code runs (otelHeadersHelper in the managed settings) to get the OTLP Authorization"
        " header from the agnes CLI's stored token; use a full path when agnes is not on PATH.",
    ),
    Setting(
        "AGNES_OTLP_MAX_KB",
        4096,
        "Largest OTLP request body accepted on /v1/logs and /v1/metrics, in KiB, counted after gzip is undone.",
        kind="int",
        bounds=(1, 1024 * 1024),
    ),
    Setting(
        "AGNES_OTLP_MAX_EVENTS",
        2000,
        "Most log records plus metric points one OTLP request may carry (Claude Code sends at most 512).",
        kind="int",
        bounds=(1, 1_000_000),
    ),
    Setting(
        "AGNES_OTLP_RATE",
        1000,
        "Events per second one access token may send to the OTLP intake (bursts of 30 seconds' worth);"
        " above it the answer is 429 with Retry-After.",
        kind="int",
        bounds=(1, 10_000_000),
    ),
    Setting(
        "AGNES_OTLP_FLUSH_MS",
        1000,
        "Milliseconds the OTLP intake gathers spooled events before committing them to the state store"
        " in one write unit (a request is answered once its events are on disk); 0 commits each request"
        " before answering it.",
        kind="int",
        bounds=(0, 60_000),
    ),
    Setting(
        "AGNES_GOOGLE_USERINFO_URL",
        "https://openidconnect.googleapis.com/v1/userinfo",
        "OpenID Connect userinfo endpoint.",
    ),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, raw: Any) -> Any:
    """The typed value of a setting. Raises ValueError for a malformed or out-of-bounds value."""
    if setting.kind == "int" and setting.bounds and raw is not None:
        value = int(raw)
        low, high = setting.bounds
        if not low <= value <= high:
            raise ValueError(f"{setting.name} must be between {low} and {high}, got {value}")
        return value
    if setting.choices is not None and raw not in setting.choices:
        raise ValueError(f"{setting.name} must be one of {', '.join(setting.choices)}, got {raw!r}")
    if not isinstance(raw, str):
        return raw
    if setting.kind == "int":
        return int(raw)
    if setting.kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if setting.kind == "list":
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def read_env_overlay(path: Path) -> dict[str, str]:
    """Parse a ``KEY=value`` overlay file (no quoting, ``#`` comments). Missing file → ``{}``."""
    values: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value
    return values


def load_settings(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resolve every setting from overrides, then the environment, then defaults.

    Returns a dict suitable for ``app.config.update``. The data directory is made absolute
    and the secret key is generated on first use (``state/secret_key``, mode 600).
    """
    overrides = overrides or {}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.name in overrides:
            raw = overrides[setting.name]
        elif setting.name in os.environ:
            raw = os.environ[setting.name]
        else:
            raw = setting.default
        values[setting.name] = _coerce(setting, raw)
    data_dir = Path(values["AGNES_DATA_DIR"]).expanduser().resolve()
    values["AGNES_DATA_DIR"] = str(data_dir)
    (data_dir / "state").mkdir(parents=True, exist_ok=True)
    if not values["AGNES_SECRET_KEY"]:
        values["AGNES_SECRET_KEY"] = _stored_secret_key(data_dir / "state" / "secret_key")
    values["AGNES_BASE_URL"] = str(values["AGNES_BASE_URL"]).rstrip("/")
    return values


def _stored_secret_key(path: Path) -> str:
    """Read the generated secret key, creating it atomically (mode 600) on first call."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    try:
        # link() fails if another process won the race; then use theirs.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()

"""Questions about usage in plain language (``POST /api/admin/usage/ask``, ``agnes admin ask``).

The question and a digest of the telemetry tables (names, columns, what they hold; never rows)
go to the Anthropic Messages API (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``,
``AGNES_ASK_MODEL``), which answers with ``{"sql", "rationale"}``. The SQL is parsed with
sqlglot and accepted only as one SELECT/WITH over the allowlisted tables, without table
functions or file, network and settings functions (established-behaviour defect 13: the
original ran it on the whole system database). It then runs on ``state/telemetry.duckdb``, a
telemetry-only copy rebuilt whenever the figures changed (:mod:`agnes.telemetry.snapshot`;
users: id, email, name), opened read-only with
external access off, for at most :data:`TIMEOUT_SECONDS` and :data:`MAX_ROWS` rows.

Errors: empty or too long question → 400; no key → 503 ``ask_unavailable``; the API refusing
the key, rate limiting or timing out → 503; a reply that is not the expected JSON → 502
``ask_bad_reply``; rejected SQL → 422 ``sql_rejected`` with the SQL and the reason (nothing run).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import sqlglot
from flask import current_app
from sqlglot import exp

from agnes.errors import AppError, Invalid
from agnes.models import json_value, telemetry
from agnes.secrets import read_secret
from agnes.telemetry.snapshot import current_telemetry_database

MAX_QUESTION = 1000
MAX_ROWS = 1000
TIMEOUT_SECONDS = 10.0
# Seconds to wait for the Messages API.
API_TIMEOUT = 60.0
ALLOWED_TABLES = frozenset(telemetry.ASK_TABLES)
# Functions that reach files, the network, settings or the catalog (by name or prefix).
DENIED_FUNCTION_PREFIXES = (
    "read_",
    "glob",
    "http",
    "pragma",
    "duckdb_",
    "sniff_",
    "parquet_",
    "iceberg_",
    "delta_",
    "json_execute",
    "query",
    "getenv",
    "current_setting",
    "load",
    "install",
    "system",
    "sqlite_",
    "postgres_",
    "mysql_",
    "arrow_scan",
    "which_secret",
)

DIGEST = """Tables (DuckDB SQL; timestamps are naive UTC):
- usage_events: one row per use. user_id, session_id, occurred_at TIMESTAMP, event_type
  ('tool_use','skill','subagent','mcp_call','slash_command'), item_type ('tool','skill','agent','mcp','command'),
  tool_name (Bash, Skill, Task, mcp__x__y; '' for commands), name (as used: Bash, plugin:skill, Explore, /plugin:cmd),
  item_name (without the plugin prefix), source ('curated','flea','builtin','unattributed'), parent (curated
  '<marketplace>/<plugin>', flea entity id, else ''), parent_name (plugin name), prefix, is_error BOOLEAN,
  is_sidechain BOOLEAN, model, event_uuid, line_no, path.
- usage_session_summary: one row per transcript file. path, user_id, session_id, kind ('main','subagent'),
  started_at, ended_at, active_seconds, wall_seconds, lines, bad_lines, user_messages, assistant_messages,
  tool_calls, tool_errors, skill_calls, subagent_calls, mcp_calls, slash_commands, primary_model, input_tokens,
  output_tokens, cache_read_tokens, cache_creation_tokens, cc_version, processed_at.
- usage_item_daily: day DATE, source, item_type (as above plus 'plugin'), parent, name, calls, errors, users
  (distinct users that day).
- usage_item_window: period ('last_7d','last_30d'), source, item_type, parent, name, calls, errors, users (distinct
  over the window), active_days, last_used_at, refreshed_at.
- users: id, email, name.
"""

SYSTEM = (
    "You write one DuckDB SELECT (or WITH ... SELECT) query answering an administrator's question about how "
    "their organization uses Claude Code. Use only these tables:\n"
    + DIGEST
    + '\nReply with a JSON object only: {"sql": "...", "rationale": "one sentence"}. No other text. '
    "Never modify data; limit large results."
)


@dataclass(frozen=True)
class Answer:
    question: str
    sql: str
    rationale: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "sql": self.sql,
            "rationale": self.rationale,
            "columns": self.columns,
            "rows": [
                [json_value(v) if not isinstance(v, int | float | str | bool) else v for v in r] for r in self.rows
            ],
            "row_count": len(self.rows),
            "truncated": self.truncated,
        }


def _cell(value: Any) -> Any:
    """A result cell as JSON holds it (dates as ISO text, decimals as numbers)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return json_value(value) if isinstance(value, list | tuple | dict) else str(value)


class SqlRejected(AppError):
    """422: the SQL is not a single read-only query over the allowed tables (nothing was run)."""

    def __init__(self, sql: str, reason: str) -> None:
        super().__init__(422, "sql_rejected", f"The generated SQL was not run: {reason}.", field="sql")
        self.sql = sql
        self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return {**super().to_dict(), "sql": self.sql, "reason": self.reason}


def unavailable(message: str) -> AppError:
    return AppError(503, "ask_unavailable", message, headers={"Retry-After": "30"})


def check_question(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise Invalid(
            "invalid_question", "Ask a question (some words about the usage you want to know).", field="question"
        )
    question = question.strip()
    if len(question) > MAX_QUESTION:
        raise Invalid("invalid_question", f"The question is longer than {MAX_QUESTION} characters.", field="question")
    return question


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def validate_sql(sql: str) -> str:
    """The SQL if it is one SELECT/WITH over :data:`ALLOWED_TABLES` without table functions or
    denied functions; raises SqlRejected with the reason otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise SqlRejected(sql, f"it does not parse ({str(exc).splitlines()[0][:200]})") from None
    if len(statements) != 1:
        raise SqlRejected(sql, f"it holds {len(statements)} statements; one SELECT is allowed")
    root = statements[0]
    if not isinstance(root, exp.Query):
        raise SqlRejected(sql, f"only SELECT or WITH queries are allowed, not {root.key.upper()}")
    ctes = {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}
    for node in root.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Copy | exp.Attach | exp.Detach | exp.Install):
            raise SqlRejected(sql, f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Create | exp.Insert | exp.Update | exp.Delete | exp.Drop | exp.Alter | exp.Merge):
            raise SqlRejected(sql, f"{node.key.upper()} is not allowed")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise SqlRejected(sql, "table functions are not allowed")
            name = node.name.lower()
            if node.db or node.catalog:
                raise SqlRejected(sql, f"{node.sql()} names another database or schema")
            if name not in ALLOWED_TABLES and name not in ctes:
                raise SqlRejected(sql, f"the table {node.name} is not one of {', '.join(sorted(ALLOWED_TABLES))}")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name.startswith(DENIED_FUNCTION_PREFIXES):
                raise SqlRejected(sql, f"the function {name} is not allowed")
    return sql


def _reply_json(text: str) -> dict[str, Any]:
    """The JSON object of the model's reply (bare, or in a ```json fence). Raises AppError 502."""
    candidates = [text.strip()]
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    if fenced:
        candidates.insert(0, fenced.group(1))
    brace = re.search(r"\{.*\}", text, re.S)
    if brace:
        candidates.append(brace.group(0))
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get("sql"), str) and value["sql"].strip():
            return value
    raise AppError(502, "ask_bad_reply", "The model's answer was not the expected JSON with a SQL query.")


def _generate(question: str, client: Any | None) -> dict[str, Any]:
    # The SDK takes over a second to import: loaded on the first question, not by every web process.
    import anthropic

    if client is None:
        key = read_secret("ANTHROPIC_API_KEY") or current_app.config.get("ANTHROPIC_API_KEY") or ""
        if not key:
            raise unavailable("Ask is not set up: ANTHROPIC_API_KEY is not configured on the server.")
        base_url = current_app.config.get("ANTHROPIC_BASE_URL") or None
        client = anthropic.Anthropic(api_key=key, base_url=base_url, timeout=API_TIMEOUT, max_retries=0)
    try:
        message = client.messages.create(
            model=current_app.config["AGNES_ASK_MODEL"],
            max_tokens=1024,
            system=SYSTEM,
            messages=[{"role": "user", "content": question}],
        )
    except (anthropic.AuthenticationError, anthropic.PermissionDeniedError):
        raise unavailable("The Anthropic API refused the configured key.") from None
    except anthropic.RateLimitError:
        raise unavailable("The Anthropic API is rate limiting this server; try again in a minute.") from None
    except anthropic.APITimeoutError:
        raise unavailable("The Anthropic API did not answer in time.") from None
    except anthropic.APIConnectionError:
        raise unavailable("The Anthropic API cannot be reached from this server.") from None
    except anthropic.APIStatusError as exc:
        if exc.status_code >= 500:
            raise unavailable(f"The Anthropic API failed (HTTP {exc.status_code}).") from None
        raise AppError(502, "ask_failed", f"The Anthropic API refused the request (HTTP {exc.status_code}).") from None
    except (anthropic.APIError, ValueError):
        raise AppError(502, "ask_bad_reply", "The Anthropic API's answer could not be read.") from None
    text = "".join(getattr(block, "text", "") for block in getattr(message, "content", []) or [])
    return _reply_json(text)


def run_query(sql: str) -> tuple[list[str], list[list[Any]], bool]:
    """Run validated SQL on the telemetry database: read-only, no external access, at most
    :data:`TIMEOUT_SECONDS`, :data:`MAX_ROWS` rows (``truncated`` when there were more)."""
    path = current_telemetry_database()
    con = duckdb.connect(
        str(path), read_only=True, config={"enable_external_access": False, "lock_configuration": True, "threads": 1}
    )
    timer = threading.Timer(TIMEOUT_SECONDS, con.interrupt)
    timer.start()
    try:
        try:
            cursor = con.execute(sql)
            rows = cursor.fetchmany(MAX_ROWS + 1)
        except duckdb.InterruptException:
            raise AppError(422, "query_timeout", f"The query ran longer than {TIMEOUT_SECONDS:g} seconds.") from None
        except duckdb.Error as exc:
            raise AppError(422, "query_failed", f"The query failed: {str(exc).splitlines()[0][:300]}") from None
        columns = [d[0] for d in cursor.description or []]
    finally:
        timer.cancel()
        con.close()
    return columns, [list(r) for r in rows[:MAX_ROWS]], len(rows) > MAX_ROWS


def ask(question: Any, *, client: Any | None = None) -> Answer:
    """Answer ``question`` (see the module doc). ``client`` replaces the Anthropic client (tests)."""
    question = check_question(question)
    reply = _generate(question, client)
    sql = validate_sql(reply["sql"].strip().rstrip(";").strip() or reply["sql"])
    columns, rows, truncated = run_query(sql)
    rationale = reply.get("rationale") if isinstance(reply.get("rationale"), str) else ""
    return Answer(question, sql, rationale, columns, rows, truncated)

"""Telemetry fixtures: the published transcripts of ``tests/fixtures/sessions`` (with their
``manifest.tsv`` of expected counts), upload helpers and a small marketplace whose plugins are the
ones those transcripts use (``handgemacht``: skill ``commit``, command ``create-beads``;
``elixir``: skill ``hex-docs-search``)."""

from __future__ import annotations

import csv
import gzip
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES_DIR, bearer
from tests.marketplace.conftest import commit_all, register, sync_now, write_manifest, write_plugin

SESSIONS = FIXTURES_DIR / "sessions"
TRANSCRIPTS = SESSIONS / "marot-spotter" / "test" / "fixtures" / "transcripts"
FASTHOOKS = SESSIONS / "pypi-fasthooks-0.1.4" / "specs"
CLAUDE_CODE_LOG = SESSIONS / "pypi-claude-code-log-1.7.0" / "dev-docs" / "messages" / "claude-code"
# Sessions with subagent folders (2.1.x layout).
WITH_SUBAGENTS = (
    "258c7280-ae70-4798-800f-63464d01a85d",
    "8463c716-a2ea-4c14-9efa-87158ebd9f20",
    "ae4a77f8-aedd-4bc1-888f-c94edc91af04",
)


@dataclass(frozen=True)
class Expected:
    """One row of manifest.tsv: what a transcript file holds."""

    path: Path
    session_id: str
    lines: int
    tool_uses: int
    tools: Counter[str]
    skills: set[str]
    subagent_types: set[str]
    command_names: set[str]
    tool_errors: int

    @property
    def is_transcript(self) -> bool:
        return bool(self.session_id)


def _split(value: str) -> set[str]:
    return {v for v in value.split(";") if v}


def manifest() -> list[Expected]:
    rows = []
    with open(SESSIONS / "manifest.tsv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            tools: Counter[str] = Counter()
            for pair in _split(row["tools"]):
                name, _, count = pair.partition("=")
                tools[name] = int(count)
            rows.append(
                Expected(
                    path=SESSIONS / row["path"],
                    session_id=row["session_ids"],
                    lines=int(row["lines"]),
                    tool_uses=int(row["tool_uses"]),
                    tools=tools,
                    skills=_split(row["skills"]),
                    subagent_types=_split(row["subagent_types"]),
                    command_names=_split(row["command_names"]),
                    tool_errors=int(row["tool_errors"]),
                )
            )
    return rows


def upload(
    client: Any,
    token: str,
    session_id: str,
    data: bytes,
    *,
    subagent: str | None = None,
    gzipped: bool = False,
) -> Any:
    """PUT a transcript (or a subagent's) as ``agnes push`` does."""
    path = f"/api/sessions/{session_id}" + (f"/subagents/{subagent}" if subagent else "")
    headers = {**bearer(token), "Content-Type": "application/x-ndjson"}
    if gzipped:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return client.put(path, data=data, headers=headers)


def usage_marketplace(repo: Path) -> Path:
    """A marketplace repository with the plugins the fixture transcripts use, committed."""
    write_plugin(repo / "plugins" / "handgemacht", "handgemacht", skills=("commit",), commands=("create-beads",))
    write_plugin(repo / "plugins" / "elixir", "elixir", skills=("hex-docs-search",))
    write_manifest(
        repo,
        [
            {"name": "handgemacht", "source": "./plugins/handgemacht", "description": "Handmade tools"},
            {"name": "elixir", "source": "./plugins/elixir", "description": "Elixir helpers"},
        ],
        name="usage-market",
    )
    commit_all(repo, "plugins")
    return repo


def synced_usage_marketplace(client: Any, admin_token: str, tmp_path: Path, slug: str = "tools") -> str:
    """Register, sync and grant to Everyone the marketplace of :func:`usage_marketplace`."""
    from agnes import people

    repo = usage_marketplace(tmp_path / f"{slug}-repo")
    register(client, bearer(admin_token), slug, repo)
    sync_now(slug)
    admin = people.resolve_user("admin@example.com")
    for plugin in ("handgemacht", "elixir"):
        people.create_grant("everyone", "marketplace_plugin", f"{slug}/{plugin}", actor_id=admin.id)
    return slug


def damaged_copies(source: Path, dest: Path) -> dict[str, Path]:
    """Copies of a transcript with a truncated last line, garbage lines and invalid UTF-8."""
    dest.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    lines = data.rstrip(b"\n").split(b"\n")
    truncated = dest / "truncated.jsonl"
    truncated.write_bytes(b"\n".join(lines[:-1]) + b"\n" + lines[-1][: len(lines[-1]) // 2])
    garbage = dest / "garbage.jsonl"
    garbage.write_bytes(b"\n".join([lines[0], b"not json at all", b'{"unclosed": ', *lines[1:], b"]]]"]) + b"\n")
    bad_utf8 = dest / "bad-utf8.jsonl"
    bad_utf8.write_bytes(b"\n".join([lines[0], b'{"type": "user", "x": "caf\xe9"}', *lines[1:]]) + b"\n")
    return {"truncated": truncated, "garbage": garbage, "bad_utf8": bad_utf8}


@pytest.fixture
def sessions_copy(tmp_path: Path) -> Path:
    """A writable copy of the marot-spotter transcripts folder."""
    dest = tmp_path / "transcripts"
    shutil.copytree(TRANSCRIPTS, dest)
    return dest


_STAMP_RE = __import__("re").compile(rb'"timestamp":\s*"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"')


def recent(data: bytes, *, days_ago: float = 1.0) -> bytes:
    """The transcript with every timestamp moved so its last line is ``days_ago`` days before now
    (the fixtures are from February 2026; 7- and 30-day figures need recent use)."""
    from datetime import UTC, datetime, timedelta

    stamps = [datetime.fromisoformat(m.group(1).decode().replace("Z", "+00:00")) for m in _STAMP_RE.finditer(data)]
    if not stamps:
        return data
    shift = datetime.now(UTC) - timedelta(days=days_ago) - max(stamps)

    def move(match):  # type: ignore[no-untyped-def]
        when = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00")) + shift
        return b'"timestamp":"' + when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].encode() + b'Z"'

    return _STAMP_RE.sub(move, data)


# A session of the analyst in the authorization matrix's world (downloadable by admins).
MATRIX_STORED_SESSION = "5f0e3c1a-7b2d-4e8f-9a6b-0c1d2e3f4a5b"


def matrix_session_file(world: Any) -> str:
    """Store one small transcript for the matrix world's analyst (once); returns its file name."""
    import io

    from agnes.telemetry.uploads import store_upload

    if not getattr(world, "_session_file", None):
        line = b'{"type": "user", "timestamp": "2026-01-01T00:00:00Z", "message": {"content": "hi"}}\n'
        store_upload(world.analyst_id, MATRIX_STORED_SESSION, io.BytesIO(line))
        world._session_file = f"{MATRIX_STORED_SESSION}.jsonl"
    return world._session_file


def matrix_subagent_file(world: Any) -> str:
    """Store one subagent transcript beside the matrix world's session (once); returns its name."""
    import io

    from agnes.telemetry.uploads import store_upload

    session = matrix_session_file(world).removesuffix(".jsonl")
    if not getattr(world, "_subagent_file", None):
        line = b'{"type": "user", "isSidechain": true, "message": {"content": "look"}}\n'
        store_upload(world.analyst_id, session, io.BytesIO(line), subagent_file="agent-a1.jsonl")
        world._subagent_file = "agent-a1.jsonl"
    return world._subagent_file

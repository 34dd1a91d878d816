"""Storing uploaded transcripts and marking sessions private (``PUT /api/sessions/...``).

A session's files live under ``<AGNES_DATA_DIR>/sessions/<user_id>/`` (by user id, never by
email: an address can change, the id cannot): ``<session_id>.jsonl`` and
``<session_id>/subagents/agent-<id>.jsonl``. An upload is streamed into a temporary file beside
its target (decompressed when sent with ``Content-Encoding: gzip``), checked, and renamed over
the target inside the write unit that records it, so a reader sees the old or the new bytes and
a refused upload leaves nothing behind.

Refusals (nothing written): session id not a UUID or file name not ``agent-<id>.jsonl`` → 400;
more than ``AGNES_SESSION_MAX_BYTES`` decompressed → 413 with the limit; bytes that hold no
UTF-8 line that is a JSON object with a ``type`` → 422 ``not_a_transcript``; a session marked
private → 409 ``session_private``.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
from flask import current_app

from agnes import audit, markers, signals
from agnes.errors import AppError, Conflict, Invalid, NotFound
from agnes.models import telemetry, utcnow
from agnes.state import state_store
from agnes.telemetry.snapshot import discard_telemetry_database

SESSION_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SUBAGENT_FILE_RE = re.compile(r"^agent-[A-Za-z0-9_-]{1,128}\.jsonl$")
# Bytes read from the request per step.
CHUNK = 1 << 20
# A line longer than this is not looked at when checking that the upload is a transcript.
MAX_PROBE_LINE = 8 << 20


def sessions_dir() -> Path:
    """``<AGNES_DATA_DIR>/sessions``: where every uploaded transcript lives."""
    return Path(current_app.config["AGNES_DATA_DIR"]) / "sessions"


def check_session_id(session_id: str) -> str:
    """The session id in lower case. Raises Invalid (400 ``invalid_session_id``) unless it is a UUID."""
    if not SESSION_ID_RE.match(session_id or ""):
        raise Invalid(
            "invalid_session_id",
            "The session id must be a UUID (8-4-4-4-12 hexadecimal digits), as Claude Code writes it.",
            field="session_id",
        )
    return session_id.lower()


def check_subagent_file(name: str) -> str:
    """Raises Invalid (400 ``invalid_file_name``) unless ``name`` is ``agent-<id>.jsonl``."""
    if not SUBAGENT_FILE_RE.match(name or ""):
        raise Invalid(
            "invalid_file_name",
            "A subagent transcript must be named agent-<id>.jsonl (letters, digits, '-' and '_' in the id).",
            field="file",
        )
    return name


def relative_path(user_id: str, session_id: str, subagent_file: str | None = None) -> str:
    if subagent_file:
        return f"{user_id}/{session_id}/subagents/{subagent_file}"
    return f"{user_id}/{session_id}.jsonl"


@dataclass(frozen=True)
class StoredUpload:
    """The outcome of one upload: ``status`` is ``created``, ``replaced`` or ``unchanged``."""

    status: str
    path: str
    session_id: str
    size_bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "session_id": self.session_id,
            "file": self.path.rsplit("/", 1)[-1],
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
        }


class _Probe:
    """Watches bytes go by and notes whether one line is a UTF-8 JSON object with a ``type``."""

    def __init__(self) -> None:
        self.found = False
        self.partial = b""
        self.skipping = False

    def feed(self, data: bytes) -> None:
        if self.found:
            return
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if self.skipping:
                self.skipping = False
                continue
            if self._is_transcript_line(line):
                self.found = True
                self.partial = b""
                return
        if len(self.partial) > MAX_PROBE_LINE:
            self.partial = b""
            self.skipping = True

    def finish(self) -> bool:
        if not self.found and self.partial and not self.skipping:
            self.found = self._is_transcript_line(self.partial)
        return self.found

    @staticmethod
    def _is_transcript_line(line: bytes) -> bool:
        if not line.strip():
            return False
        try:
            obj = orjson.loads(line)  # refuses bytes that are not UTF-8
        except orjson.JSONDecodeError:
            return False
        return isinstance(obj, dict) and isinstance(obj.get("type"), str)


def _receive(stream: IO[bytes], gzipped: bool, target: Path, limit: int) -> tuple[Path, int, str]:
    """Copy ``stream`` into a temporary file beside ``target``; returns ``(tmp, size, sha256)``.

    Raises AppError 400 ``invalid_gzip``, 413 ``session_too_large``, 422 ``not_a_transcript``
    (the temporary file removed).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.upload")
    digest = hashlib.sha256()
    probe = _Probe()
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    try:
        with open(tmp, "wb") as out:
            while True:
                block = stream.read(CHUNK)
                if not block:
                    break
                pieces = [block]
                if inflater is not None:
                    try:
                        pieces = _inflate(inflater, block, limit - size)
                    except zlib.error:
                        raise Invalid("invalid_gzip", "The body is not valid gzip data.", field="body") from None
                for piece in pieces:
                    size += len(piece)
                    if size > limit:
                        raise _too_large(limit)
                    digest.update(piece)
                    probe.feed(piece)
                    out.write(piece)
            if inflater is not None and not inflater.eof:
                raise Invalid("invalid_gzip", "The gzip data ends early (the upload was cut).", field="body")
        if not probe.finish():
            raise AppError(
                422,
                "not_a_transcript",
                'This is not a Claude Code transcript: no line is UTF-8 JSON object with a "type".',
                field="body",
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, size, digest.hexdigest()


def _inflate(inflater: Any, block: bytes, room: int) -> list[bytes]:
    """Decompress ``block`` without producing more than ``room`` + 1 bytes at once (a gzip bomb
    stops at the limit instead of filling memory)."""
    out = []
    data = block
    budget = max(room, 0) + 1
    while True:
        piece = inflater.decompress(data, min(CHUNK, budget))
        if piece:
            out.append(piece)
            budget -= len(piece)
            if budget <= 0:
                break
        data = inflater.unconsumed_tail
        if not data:
            break
    return out


def _too_large(limit: int) -> AppError:
    mb = limit / (1024 * 1024)
    return AppError(
        413,
        "session_too_large",
        f"The transcript is larger than the limit of {mb:g} MB ({limit} bytes, counted decompressed).",
        field="body",
    )


def store_upload(
    user_id: str,
    session_id: str,
    stream: IO[bytes],
    *,
    gzipped: bool = False,
    subagent_file: str | None = None,
) -> StoredUpload:
    """Store one transcript of ``user_id`` (the main file, or a subagent's).

    Same bytes as stored → ``unchanged`` and nothing is rewritten; other bytes replace the file.
    Audited ``session.upload`` with the status and size. Raises the refusals of the module doc.
    """
    session_id = check_session_id(session_id)
    if subagent_file is not None:
        check_subagent_file(subagent_file)
    path = relative_path(user_id, session_id, subagent_file)
    root = sessions_dir()
    target = root / path
    with state_store().read() as con:
        if telemetry.is_private(con, user_id, session_id):
            raise _private()
    limit = int(current_app.config["AGNES_SESSION_MAX_BYTES"])
    tmp, size, sha = _receive(stream, gzipped, target, limit)
    try:
        with state_store().write() as con:
            if telemetry.is_private(con, user_id, session_id):
                raise _private()
            existing = telemetry.get_session_file(con, path)
            now = utcnow()
            if existing is not None and existing.sha256 == sha and target.exists():
                status = "unchanged"
            else:
                status = "created" if existing is None else "replaced"
                telemetry.upsert_session_file(
                    con,
                    telemetry.SessionFile(
                        path=path,
                        user_id=user_id,
                        session_id=session_id,
                        kind="subagent" if subagent_file else "main",
                        size_bytes=size,
                        sha256=sha,
                        uploaded_at=existing.uploaded_at if existing else now,
                        updated_at=now,
                    ),
                )
            audit.record(con, "session.upload", f"session:{session_id}", file=target.name, status=status, bytes=size)
            if status != "unchanged":
                os.replace(tmp, target)  # last: a failure before this rolls the rows back
    finally:
        tmp.unlink(missing_ok=True)
    return StoredUpload(status, path, session_id, size, sha)


def _private() -> Conflict:
    return Conflict(
        "session_private",
        "This session was marked private (agnes mark-private): it is not stored.",
        field="session_id",
    )


def mark_private(user_id: str, session_id: str) -> dict[str, Any]:
    """Mark one of ``user_id``'s sessions private and delete what was uploaded of it: files,
    events, summaries, its OpenTelemetry events (and, through ``signals.session_removed``, what other areas derived).

    Returns ``{"session_id", "marked": bool (False when it already was), "files", "events",
    "otel_events"}`` (``otel_events``: rows Claude Code exported of it over OpenTelemetry).
    Audited ``session.mark_private``. Raises Invalid (400) for an id that is not a UUID.
    """
    session_id = check_session_id(session_id)
    with state_store().write() as con:
        marked = telemetry.mark_private(con, user_id, session_id, utcnow())
        removed = telemetry.delete_session(con, user_id, session_id)
        telemetry.refresh_daily(con, removed["days"])
        if removed["events"] or removed["otel_events"]:
            telemetry.refresh_windows(con, utcnow())
            markers.USAGE.bump()
        signals.session_removed.send(None, con=con, user_id=user_id, session_id=session_id)
        audit.record(
            con,
            "session.mark_private",
            f"session:{session_id}",
            files=removed["files"],
            otel_events=removed["otel_events"],
        )
    discard_telemetry_database()  # the private session must not stay in ask's copy
    user_dir = sessions_dir() / user_id
    shutil.rmtree(user_dir / session_id, ignore_errors=True)
    (user_dir / f"{session_id}.jsonl").unlink(missing_ok=True)
    return {
        "session_id": session_id,
        "marked": marked,
        "files": removed["files"],
        "events": removed["events"],
        "otel_events": removed["otel_events"],
    }


# -- reading stored sessions back (admin downloads) ------------------------------------------------

# A session file name an admin may ask for (established: no separators, no traversal).
DOWNLOAD_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+\.jsonl$")


def stored_session_file(user_id: str, name: str) -> Path:
    """The stored main transcript ``name`` (``<session_id>.jsonl``) of ``user_id``.

    Raises:
        Invalid: 400 ``invalid_file_name`` for a name not matching ``^[A-Za-z0-9._-]+\\.jsonl$``.
        NotFound: 404 ``session_not_found`` when the user has no such file.
    """
    if not DOWNLOAD_NAME_RE.match(name or "") or name.startswith("."):
        raise Invalid("invalid_file_name", "A session file name is <letters, digits, . _ ->.jsonl.", field="name")
    with state_store().read() as con:
        record = telemetry.get_session_file(con, f"{user_id}/{name}")
    path = sessions_dir() / user_id / name
    if record is None or not path.is_file():
        raise NotFound("session_not_found", f"There is no session file {name} for this user.")
    return path


def stored_user_files(user_id: str) -> list[tuple[str, Path, int]]:
    """Every stored file of ``user_id`` that is still on disk: ``(name in the archive, path, bytes)``,
    by session (``<session_id>.jsonl``, ``<session_id>/subagents/agent-<id>.jsonl``)."""
    with state_store().read() as con:
        records = telemetry.list_session_files(con, user_id)
    root = sessions_dir()
    found = []
    for record in records:
        path = root / record.path
        if path.is_file() and not path.is_symlink():
            found.append((record.path.split("/", 1)[1], path, path.stat().st_size))
    return found

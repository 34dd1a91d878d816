"""``agnes push`` and ``agnes mark-private``: upload Claude Code transcripts, keep private ones home.

Standard library only (it runs in a SessionEnd hook at the end of every session). Files under the
workspace's ``.claude/`` folder:

* ``agnes-sessions.txt``: the queue, ``<session_id>\\t<transcript path>`` per line (the hook's
  stdin adds the ending session; entries that failed for a reason worth retrying go back here);
* ``agnes-sessions-private.txt``: session ids marked private; never uploaded from here;
* ``agnes-private-pending.txt``: private marks the server has not confirmed yet (sent first on
  the next push);
* ``agnes-push-state.json``: size, mtime and sha256 of each file last uploaded (unchanged files
  are not sent again);
* ``agnes-push-failed.log``: entries dropped after a permanent refusal (a 4xx other than 408/429);
* ``agnes-push-status.json``: the last run's outcome (``agnes push --status``);
* ``agnes-push.lock``: one push at a time; a second one queues its session and leaves.

Subagent transcripts ``<session_id>/subagents/agent-*.jsonl`` beside the main file go with it,
except ``agent-acompact-*`` (compaction, not subagents). Uploads are gzip-compressed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.client import ApiError, Client, error_from, network_reason
from cli.client import Response as ClientResponse

SESSION_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Statuses worth trying again later (with network failures, status 0).
RETRY_STATUSES = frozenset({0, 408, 429, 500, 502, 503, 504})
# Largest hook payload read from stdin (bytes).
MAX_STDIN = 1 << 20


class PushBusy(Exception):
    """Another ``agnes push`` holds this workspace."""


class Paths:
    def __init__(self, workspace: Path) -> None:
        base = workspace / ".claude"
        self.base = base
        self.queue = base / "agnes-sessions.txt"
        self.private = base / "agnes-sessions-private.txt"
        self.private_pending = base / "agnes-private-pending.txt"
        self.state = base / "agnes-push-state.json"
        self.failed = base / "agnes-push-failed.log"
        self.status = base / "agnes-push-status.json"
        self.lock = base / "agnes-push.lock"


def _read_lines(path: Path) -> list[str]:
    try:
        return [
            line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()
        ]
    except FileNotFoundError:
        return []


def _append(path: Path, lines: list[str]) -> None:
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(f"{line}\n" for line in lines))


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def private_ids(paths: Paths) -> set[str]:
    return {line.lower() for line in _read_lines(paths.private)}


def check_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.match(session_id or ""):
        raise ValueError(f"{session_id!r} is not a Claude Code session id (a UUID)")
    return session_id.lower()


def read_hook_payload(stream: Any) -> dict[str, Any] | None:
    """The SessionEnd hook's JSON from ``stream`` (stdin), or None when there is none.

    A terminal, or a pipe that stays silent for half a second, means no hook is talking.
    """
    try:
        if stream is None or stream.isatty():
            return None
        if os.name != "nt":
            import select

            ready, _, _ = select.select([stream], [], [], 0.5)
            if not ready:
                return None
        raw = stream.read(MAX_STDIN)
    except (OSError, ValueError):
        return None
    if not raw or not raw.strip():
        return None
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def enqueue(paths: Paths, session_id: str, transcript: str) -> bool:
    """Add a session to the queue unless it is private; True when added."""
    session_id = check_session_id(session_id)
    if session_id in private_ids(paths):
        return False
    _append(paths.queue, [f"{session_id}\t{transcript}"])
    return True


@contextmanager
def push_lock(paths: Paths) -> Iterator[None]:
    """Hold ``agnes-push.lock``; raises PushBusy when another push has it."""
    paths.base.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a+b") as fh:
        try:
            if os.name == "nt":
                import msvcrt

                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise PushBusy("another agnes push is running in this workspace; this session waits in its queue") from None
        yield


def session_files(session_id: str, transcript: Path) -> list[tuple[str | None, Path]]:
    """``[(None, main), ("agent-x.jsonl", path), ...]``: the transcript and its subagents' files."""
    files: list[tuple[str | None, Path]] = [(None, transcript)]
    folder = transcript.with_suffix("") / "subagents"
    if not folder.is_dir():
        folder = transcript.parent / session_id / "subagents"
    if folder.is_dir():
        for path in sorted(folder.glob("agent-*.jsonl")):
            if not path.name.startswith("agent-acompact-") and path.is_file():
                files.append((path.name, path))
    return files


@dataclass
class PushResult:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    skipped_private: list[str] = field(default_factory=list)
    private_sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    would_upload: list[str] = field(default_factory=list)
    busy: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _put(client: Client, session_id: str, subagent: str | None, body: bytes) -> ClientResponse:
    path = f"/api/sessions/{session_id}" + (f"/subagents/{subagent}" if subagent else "")
    try:
        raw = client.open(
            "PUT",
            path,
            body=gzip.compress(body, compresslevel=6),
            headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        )
        data = raw.read()
    except ApiError:
        raise
    except OSError as exc:
        raise ApiError(0, f"the upload was cut: {network_reason(exc)}") from None
    return ClientResponse(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data, client.server)


def _send_private_marks(client: Client, paths: Paths, result: PushResult) -> None:
    pending = list(dict.fromkeys(_read_lines(paths.private_pending)))
    if not pending:
        return
    left = []
    for session_id in pending:
        try:
            client.request("POST", f"/api/sessions/{session_id}/private", json_body={})
            result.private_sent.append(session_id)
        except ApiError as exc:
            if exc.status in RETRY_STATUSES or exc.status == 401:
                left.append(session_id)
            result.errors.append(f"{session_id}: marking private failed: {exc}")
    tmp = paths.private_pending.with_name(f".{paths.private_pending.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(f"{s}\n" for s in left), encoding="utf-8")
    os.replace(tmp, paths.private_pending)


def _take_queue(paths: Paths) -> list[tuple[str, str]]:
    """Move the queue (and snapshots a crashed push left) aside; returns its entries, de-duplicated."""
    snapshots = sorted(paths.base.glob("agnes-sessions.txt.*.sending"))
    if paths.queue.exists():
        snapshot = paths.base / f"agnes-sessions.txt.{os.getpid()}.{int(time.time())}.sending"
        os.replace(paths.queue, snapshot)
        snapshots.append(snapshot)
    entries: dict[str, str] = {}
    for snapshot in snapshots:
        for line in _read_lines(snapshot):
            session_id, _, transcript = line.partition("\t")
            if SESSION_ID_RE.match(session_id) and transcript:
                entries[session_id.lower()] = transcript
    for snapshot in snapshots:
        snapshot.unlink(missing_ok=True)
    return list(entries.items())


def _peek_queue(paths: Paths) -> list[tuple[str, str]]:
    entries: dict[str, str] = {}
    for source in [*sorted(paths.base.glob("agnes-sessions.txt.*.sending")), paths.queue]:
        for line in _read_lines(source):
            session_id, _, transcript = line.partition("\t")
            if SESSION_ID_RE.match(session_id) and transcript:
                entries[session_id.lower()] = transcript
    return list(entries.items())


def _fingerprint(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def push(client: Client, workspace: Path, *, dry_run: bool = False) -> PushResult:
    """Upload the queued sessions of ``workspace`` (see the module doc). Raises PushBusy."""
    paths = Paths(workspace)
    result = PushResult()
    private = private_ids(paths)
    if dry_run:
        state = _load_state(paths)
        for session_id, transcript in _peek_queue(paths):
            if session_id in private:
                result.skipped_private.append(session_id)
                continue
            for _, path in session_files(session_id, Path(transcript)):
                if path.exists() and state.get(str(path), {}).get("fingerprint") != _fingerprint(path):
                    result.would_upload.append(str(path))
        return result
    with push_lock(paths):
        _send_private_marks(client, paths, result)
        state = _load_state(paths)
        requeue: list[str] = []
        dropped: list[str] = []
        for session_id, transcript in _take_queue(paths):
            if session_id in private:
                result.skipped_private.append(session_id)
                continue
            outcome = _push_session(client, session_id, Path(transcript), state, result)
            if outcome == "requeue":
                requeue.append(f"{session_id}\t{transcript}")
                result.requeued.append(session_id)
            elif outcome.startswith("drop:"):
                dropped.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\t{session_id}\t{transcript}\t{outcome[5:]}")
                result.dropped.append(session_id)
            _write_json(paths.state, state)
        _append(paths.queue, requeue)
        _append(paths.failed, dropped)
    return result


def _load_state(paths: Paths) -> dict[str, Any]:
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _push_session(client: Client, session_id: str, transcript: Path, state: dict[str, Any], result: PushResult) -> str:
    """Upload one session's files; returns ``ok``, ``requeue`` or ``drop:<reason>``."""
    if not transcript.is_file():
        return "drop:the transcript file is gone"
    for subagent, path in session_files(session_id, transcript):
        key = str(path)
        try:
            fingerprint = _fingerprint(path)
            if state.get(key, {}).get("fingerprint") == fingerprint:
                result.unchanged.append(key)
                continue
            body = path.read_bytes()
        except OSError as exc:
            result.errors.append(f"{key}: {exc.strerror or exc}")
            return "requeue"
        sha = hashlib.sha256(body).hexdigest()
        if state.get(key, {}).get("sha256") == sha:
            state[key] = {"fingerprint": fingerprint, "sha256": sha}
            result.unchanged.append(key)
            continue
        try:
            response = _put(client, session_id, subagent, body)
            status, error = response.status, None if response.status < 400 else error_from(response)
        except ApiError as exc:
            status, error = exc.status, exc
        if error is None:
            answer = response.json() or {}
            (result.unchanged if answer.get("status") == "unchanged" else result.uploaded).append(key)
            state[key] = {"fingerprint": fingerprint, "sha256": sha}
            continue
        result.errors.append(f"{key}: {error}")
        if status in RETRY_STATUSES or status >= 500:
            return "requeue"
        return f"drop:HTTP {status} {error}"
    return "ok"


def mark_private_locally(workspace: Path, session_id: str) -> bool:
    """Add the id to the private list (idempotent) and to the marks the server must hear of;
    True when it was not listed yet."""
    paths = Paths(workspace)
    session_id = check_session_id(session_id)
    new = session_id not in private_ids(paths)
    if new:
        _append(paths.private, [session_id])
    if session_id not in _read_lines(paths.private_pending):
        _append(paths.private_pending, [session_id])
    return new


def confirm_private(client: Client, workspace: Path, session_id: str) -> dict[str, Any]:
    """Tell the server (deleting what was uploaded); on success the pending mark is cleared.
    Raises ApiError (the mark stays pending for the next push)."""
    paths = Paths(workspace)
    answer = client.request("POST", f"/api/sessions/{session_id}/private", json_body={}).json() or {}
    left = [s for s in _read_lines(paths.private_pending) if s != session_id]
    paths.private_pending.write_text("".join(f"{s}\n" for s in left), encoding="utf-8")
    return answer


def write_status(workspace: Path, data: dict[str, Any]) -> None:
    _write_json(Paths(workspace).status, {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **data})


def read_status(workspace: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Paths(workspace).status.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None

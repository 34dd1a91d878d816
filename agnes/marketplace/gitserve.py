"""``/marketplace.git``: the served marketplace over git smart HTTP (read-only).

Mounted in front of Flask by :class:`MarketplaceDispatcher` (Flask still answers the exact
path ``/marketplace.git/``, the form Claude Code fetches as a ``marketplace.json``). Auth is
HTTP Basic with the PAT as password (the user name is ignored), resolved like every served form
by :mod:`agnes.marketplace.serving`; push is refused with 403.

The protocol runs on dulwich's ``HTTPGitApplication`` (request parsing, no-cache headers) with
our own upload-pack handler. The request body is read, gunzipped and checked (pkt-line framing,
:data:`UPLOAD_PACK_MAX` bytes) here first, so hostile bodies get a 400/413 with a reason. Every served repository holds
exactly one root commit, so negotiation is trivial and the answer to any fetch is the stored
pack, streamed as-is. That also avoids dulwich 1.2.21's generic handler failing on what
Claude Code sends: ``deepen`` followed by ``filter`` (HTTP 500), ``shallow`` lines without
``deepen`` from a fetch inside a shallow clone (HTTP 500), and lazy tree fetches by id after
a ``filter=tree:0`` clone. We therefore do not advertise ``filter`` (git then warns and
takes the full shallow pack) and answer ``deepen`` with our single commit as the boundary.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import zlib
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from dulwich.errors import GitProtocolError, HangupException
from dulwich.server import DictBackend, UploadPackHandler
from dulwich.web import HTTPGitApplication
from flask import Flask

from agnes.errors import AppError
from agnes.marketplace.fastpath import serve_zip
from agnes.marketplace.packager import git_repo
from agnes.marketplace.serving import Unauthenticated, credentials_token, record_download, served_caller

log = logging.getLogger(__name__)

GIT_PREFIX = "/marketplace.git"
REALM = 'Basic realm="agnes-marketplace"'
# Largest side-band-64k payload of one pkt-line (65520 - 4 length - 1 channel byte).
SIDEBAND_64K = 65515
SIDEBAND = 995
READ_CHUNK = 1 << 20
# Largest upload-pack request body, before and after gunzip (bytes). A fetch of our
# single-commit repositories sends a few want/have lines: a few kilobytes at most.
UPLOAD_PACK_MAX = 1 << 20


class BadBody(Exception):
    """An upload-pack body we refuse before git sees it; ``status`` is the HTTP status line."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class SnapshotRepo:
    """An immutable single-commit repository from the git cache."""

    path: str
    head: bytes  # hex commit id
    pack: str  # path of its only pack file

    @classmethod
    def load(cls, path: Path) -> SnapshotRepo:
        cached = _REPOS.get(str(path))
        if cached is not None:
            return cached
        head = (path / "packed-refs").read_bytes().splitlines()[-1].split(b" ")[0]
        pack_dir = path / "objects" / "pack"
        packs = [p for p in os.listdir(pack_dir) if p.endswith(".pack")]
        repo = cls(str(path), head, str(pack_dir / packs[0]))
        with _REPOS_LOCK:
            if len(_REPOS) > 256:
                _REPOS.clear()
            _REPOS[str(path)] = repo
        return repo


_REPOS: dict[str, SnapshotRepo] = {}
_REPOS_LOCK = threading.Lock()


class SnapshotUploadPackHandler(UploadPackHandler):
    """upload-pack (protocol v0/v1, stateless HTTP) for a repository of one root commit."""

    repo: SnapshotRepo  # type: ignore[assignment]

    def capabilities(self) -> list[bytes]:
        return [
            b"side-band-64k",
            b"side-band",
            b"ofs-delta",
            b"thin-pack",
            b"shallow",
            b"no-progress",
            b"include-tag",
            b"symref=HEAD:refs/heads/main",
            b"object-format=sha1",
            b"agent=agnes",
        ]

    def handle(self) -> None:
        try:
            self._handle()
        except (GitProtocolError, ValueError, IndexError) as exc:
            # The body passed the pkt-line check but is not an upload-pack request git would send.
            log.info("marketplace.git: refused an upload-pack request: %s", exc)
            self.proto.write_pkt_line(b"ERR upload-pack: malformed request")

    def _handle(self) -> None:
        head = self.repo.head
        if self.advertise_refs:
            self.proto.write_pkt_line(head + b" HEAD\x00" + b" ".join(self.capabilities()) + b"\n")
            self.proto.write_pkt_line(head + b" refs/heads/main\n")
            self.proto.write_pkt_line(None)
            return
        wants: list[bytes] = []
        caps: set[bytes] = set()
        depth = None
        line = self._read()
        while line is not None:  # wants, shallows and deepen lines up to a flush-pkt
            words = line.rstrip(b"\n").split(b" ")
            if words[0] == b"want" and len(words) > 1:
                wants.append(words[1])
                if len(wants) == 1:
                    caps.update(words[2:])
            elif words[0] == b"deepen" and len(words) > 1:
                depth = int(words[1]) if words[1].isdigit() else 1
            elif words[0] in (b"deepen-since", b"deepen-not"):
                depth = depth or 1
            # "shallow <id>" lines name the client's boundary commits, never ours: ignored, as
            # C git ignores shallow lines for objects it does not have.
            # "filter" is not advertised; a client that sends it anyway gets the full pack.
            line = self._read()
        if not wants:
            return
        for want in wants:
            if want != head:
                # The served set changed between the ref advertisement and this request.
                self.proto.write_pkt_line(b"ERR upload-pack: not our ref " + want + b"; retry the fetch")
                return
        if depth is not None:  # the client reads a shallow-update section only when it asked to deepen
            if depth == 1:
                self.proto.write_pkt_line(b"shallow " + head + b"\n")
            self.proto.write_pkt_line(None)
        while True:  # haves: none can be ours (other commits), so never common
            try:
                line = self.proto.read_pkt_line()
            except HangupException:
                return  # stateless: the client only wanted the shallow information
            if line is None:
                self.proto.write_pkt_line(b"NAK\n")
                return
            if line.rstrip(b"\n") == b"done":
                self.proto.write_pkt_line(b"NAK\n")
                break
        self._send_pack(caps)

    def _read(self) -> bytes | None:
        try:
            return self.proto.read_pkt_line()
        except HangupException:
            return None

    def _send_pack(self, caps: set[bytes]) -> None:
        if b"side-band-64k" in caps:
            chunk = SIDEBAND_64K
        elif b"side-band" in caps:
            chunk = SIDEBAND
        else:
            chunk = 0
        with open(self.repo.pack, "rb") as fh:
            if not chunk:
                while block := fh.read(READ_CHUNK):
                    self.proto.write(block)
                return
            write = self.proto.write
            while block := fh.read(READ_CHUNK):
                parts = []
                for start in range(0, len(block), chunk):
                    piece = block[start : start + chunk]
                    parts.append(b"%04x\x01" % (len(piece) + 5) + piece)
                write(b"".join(parts))
        self.proto.write_pkt_line(None)


HANDLERS: dict[bytes, Any] = {b"git-upload-pack": SnapshotUploadPackHandler}


def _plain(start_response: Any, status: str, text: str, extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    body = (text + "\n").encode()
    start_response(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *(extra or []),
        ],
    )
    return [body]


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, gunzipped, at most :data:`UPLOAD_PACK_MAX` bytes, checked to be a
    sequence of well-formed pkt-lines. Raises BadBody (413 too large, 400 bad gzip or framing)."""
    too_large = BadBody("413 Content Too Large", f"The upload-pack request is larger than {UPLOAD_PACK_MAX} bytes.")
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > UPLOAD_PACK_MAX:
        raise too_large
    stream = environ["wsgi.input"]
    raw = stream.read(int(length)) if length.isdigit() else stream.read(UPLOAD_PACK_MAX + 1)
    if len(raw) > UPLOAD_PACK_MAX:
        raise too_large
    if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(raw, UPLOAD_PACK_MAX + 1)
        except zlib.error:
            raise BadBody("400 Bad Request", "The upload-pack request is not valid gzip.") from None
        if len(body) > UPLOAD_PACK_MAX or inflater.unconsumed_tail:
            raise too_large
        if not inflater.eof:
            raise BadBody("400 Bad Request", "The upload-pack request is truncated gzip.")
    else:
        body = raw
    _check_pkt_lines(body)
    return body


def _check_pkt_lines(body: bytes) -> None:
    """Raise BadBody unless ``body`` is one or more complete pkt-lines (flush/delim included)."""
    malformed = BadBody("400 Bad Request", "The upload-pack request is not a sequence of git pkt-lines.")
    if not body:
        raise malformed
    pos = 0
    while pos < len(body):
        head = body[pos : pos + 4]
        try:
            size = int(head, 16) if len(head) == 4 and all(c in b"0123456789abcdefABCDEF" for c in head) else -1
        except ValueError:
            size = -1
        if size in (0, 1, 2):  # flush-pkt, delim-pkt, response-end
            pos += 4
            continue
        if size < 4 or pos + size > len(body):
            raise malformed
        pos += size


class MarketplaceDispatcher:
    """WSGI middleware: ``/marketplace.git/<anything but nothing>`` to git, repeated
    ``/marketplace.zip`` downloads to :func:`agnes.marketplace.fastpath.serve_zip`, the rest to
    Flask. Mounted by :func:`agnes.app.create_app`."""

    def __init__(self, app: Flask, inner: Any) -> None:
        self.app = app
        self.inner = inner

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(GIT_PREFIX + "/") and path != GIT_PREFIX + "/":
            return self.serve_git(environ, start_response, path[len(GIT_PREFIX) :])
        if path == "/marketplace.zip" and environ.get("REQUEST_METHOD") == "GET":
            answered = serve_zip(self.app, environ, start_response)
            if answered is not None:
                return answered
        return self.inner(environ, start_response)

    def serve_git(self, environ: dict[str, Any], start_response: Any, sub: str) -> Any:
        method = environ.get("REQUEST_METHOD", "GET")
        service = parse_qs(environ.get("QUERY_STRING", "")).get("service", [""])[0]
        if sub.endswith("git-receive-pack") or service == "git-receive-pack":
            return _plain(start_response, "403 Forbidden", "This marketplace is read-only: push is refused.")
        smart = (method == "GET" and sub == "/info/refs" and service == "git-upload-pack") or (
            method == "POST" and sub == "/git-upload-pack"
        )
        if not smart:
            return _plain(start_response, "404 Not Found", "Only git smart HTTP (upload-pack) is served here.")
        ip = environ.get("REMOTE_ADDR")
        try:
            with self.app.app_context():
                caller = served_caller(credentials_token(environ), ip)
                assert caller is not None  # only cached_only answers None
                if method == "POST":  # a fetch is a download (info/refs alone is not)
                    record_download(caller, "git", ip)
                repo = SnapshotRepo.load(git_repo(caller.served))
        except Unauthenticated as exc:
            return _plain(start_response, "401 Unauthorized", str(exc), [("WWW-Authenticate", REALM)])
        except AppError as exc:
            return _plain(start_response, f"{exc.status} {HTTPStatus(exc.status).phrase}", exc.message)
        except Exception:
            log.exception("marketplace.git: could not prepare the repository")
            return _plain(start_response, "500 Internal Server Error", "The marketplace could not be built.")
        environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + GIT_PREFIX, PATH_INFO=sub)
        if method == "POST":
            # Read, gunzip and check the body here, with a size limit: a malformed, bad-gzip or huge
            # body is a 400/413 with a reason, not an exception inside dulwich (HTML 500).
            try:
                body = _read_body(environ)
            except BadBody as exc:
                return _plain(start_response, exc.status, exc.message)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            for header in ("HTTP_CONTENT_ENCODING", "HTTP_TRANSFER_ENCODING"):
                environ.pop(header, None)
        git_app = HTTPGitApplication(DictBackend({"/": repo}), handlers=HANDLERS)
        git_app.handlers = dict(HANDLERS)  # the constructor merges in dulwich's receive-pack; keep ours only
        return git_app(environ, start_response)

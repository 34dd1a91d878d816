"""Laying out a served set and building its artifacts: a bare git repository and a ZIP.

Layout (identical in both)::

    .claude-plugin/marketplace.json       merged manifest named "agnes"
    plugins/<slug>-<plugin>/...           each plugin's files

Artifacts are content-addressed by the set's ETag (``marketplaces/git-cache/<etag>.git``,
``marketplaces/zip-cache/<etag>.zip``), built once into a unique temporary name and renamed
into place, so concurrent first requests are safe (the loser discards its copy). The git
repository holds one deterministic commit (fixed author, time and message) stored as a
single pack, which the git endpoint streams as-is to a cloning client.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
import os
import shutil
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dulwich.objects import Commit, Tree
from dulwich.pack import write_pack_index
from flask import current_app

from agnes.errors import AppError
from agnes.marketplace.resolver import MARKETPLACE_NAME, ServedPlugin, ServedSet, all_served_etags
from agnes.models import new_id
from agnes.models.flea import MARKETPLACE_ID as FLEA_MARKETPLACE_ID
from agnes.state import state_store

log = logging.getLogger(__name__)

COMMIT_AUTHOR = b"agnes-marketplace <noreply@agnes.local>"
COMMIT_MESSAGE = b"agnes marketplace snapshot\n"
BRANCH = b"refs/heads/main"
ZIP_COMPRESSION = 6
# Served files that are Agnes-only metadata, never sent to Claude Code.
EXCLUDED_NAMES = frozenset({"marketplace-metadata.json"})
EXCLUDED_DIRS = frozenset({".agnes", ".git"})
# Artifacts younger than this are never pruned (a client may be mid-download), seconds.
PRUNE_GRACE = 600
# Fixed timestamp of ZIP members (the earliest ZIP allows), for byte-identical builds.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class FileEntry:
    """One served file: its path in the layout, git mode, and where its bytes come from."""

    path: str
    mode: int
    source: str | None = None  # absolute path on disk
    data: bytes | None = None  # or the bytes themselves (generated files)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        with open(self.source, "rb") as fh:
            return fh.read()


def cache_root() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "marketplaces"


def manifest_entry(plugin: ServedPlugin, source: Any) -> dict[str, Any]:
    """The plugin's upstream entry, renamed and pointed at its served copy."""
    entry = {k: v for k, v in plugin.raw.items() if k not in ("source", "name")}
    entry = {"name": plugin.served_name, **entry, "source": source}
    if plugin.version and "version" not in entry:
        entry["version"] = plugin.version
    return entry


def marketplace_json(served: ServedSet, *, git_url: str | None = None) -> dict[str, Any]:
    """The merged marketplace.json. With ``git_url`` the sources are ``git-subdir`` entries
    pointing back at the git endpoint (the form Claude Code needs for ``.../marketplace.git/``)."""
    plugins = []
    for plugin in served.plugins:
        if git_url:
            source: Any = {"source": "git-subdir", "url": git_url, "path": f"plugins/{plugin.prefixed_name}"}
        else:
            source = f"./plugins/{plugin.prefixed_name}"
        plugins.append(manifest_entry(plugin, source))
    return {
        "name": MARKETPLACE_NAME,
        "owner": {"name": "Agnes"},
        "metadata": {"description": "Plugins you chose in Agnes, filtered by your access.", "version": served.etag},
        "plugins": plugins,
    }


def _plugin_json_renamed(path: str | None, plugin: ServedPlugin) -> bytes:
    """The served plugin.json: the plugin's own (or a generated one when ``path`` is None) with
    the served name; a flea-market plugin also gets its served version ``<n>-<sha8>`` and,
    when generated, its description and author."""
    doc: Any = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            doc = {}
    if not isinstance(doc, dict):
        doc = {}
    doc["name"] = plugin.served_name
    if plugin.marketplace_id == FLEA_MARKETPLACE_ID:
        doc["version"] = plugin.version
        doc.setdefault("description", plugin.description)
        if isinstance(plugin.raw.get("author"), dict):
            doc.setdefault("author", plugin.raw["author"])
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def iter_files(served: ServedSet) -> Iterator[FileEntry]:
    """Every served file in path order (deterministic).

    Raises:
        AppError: 503 when a plugin's synced files are missing on disk. Artifacts are cached
            under the content ETag, so a partial build must never be stored as if complete.
    """
    manifest = json.dumps(marketplace_json(served), indent=2, ensure_ascii=False).encode() + b"\n"
    yield FileEntry(".claude-plugin/marketplace.json", 0o100644, data=manifest)
    for plugin in sorted(served.plugins, key=lambda p: p.prefixed_name):
        root = plugin.content_dir
        if not os.path.isdir(root):
            log.error(
                "served files of %s are missing at %s; re-sync marketplace %s",
                plugin.prefixed_name,
                root,
                plugin.marketplace_id,
            )
            raise AppError(
                503,
                "marketplace_unavailable",
                "The marketplace is being updated or its files are missing; try again shortly.",
            )
        found: list[FileEntry] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
            rel_dir = os.path.relpath(dirpath, root)
            for name in filenames:
                if name in EXCLUDED_NAMES:
                    continue
                full = os.path.join(dirpath, name)
                st = os.lstat(full)
                if not os.path.isfile(full) or os.path.islink(full):
                    continue
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                mode = 0o100755 if st.st_mode & 0o111 else 0o100644
                path = f"plugins/{plugin.prefixed_name}/{rel}"
                if plugin.renamed and rel == ".claude-plugin/plugin.json":
                    found.append(FileEntry(path, mode, data=_plugin_json_renamed(full, plugin)))
                else:
                    found.append(FileEntry(path, mode, source=full))
        manifest_path = f"plugins/{plugin.prefixed_name}/.claude-plugin/plugin.json"
        if plugin.marketplace_id == FLEA_MARKETPLACE_ID and not any(f.path == manifest_path for f in found):
            found.append(FileEntry(manifest_path, 0o100644, data=_plugin_json_renamed(None, plugin)))
        yield from sorted(found, key=lambda f: f.path)


# -- git ---------------------------------------------------------------------------------------


def _pack_header(type_num: int, size: int) -> bytes:
    byte = (type_num << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _blob_record(entry: FileEntry, level: int) -> tuple[bytes, bytes]:
    data = entry.read()
    sha = hashlib.sha1(b"blob %d\x00" % len(data))
    sha.update(data)
    return sha.digest(), _pack_header(3, len(data)) + zlib.compress(data, level)


def deterministic_commit(tree_id: bytes) -> Commit:
    commit = Commit()
    commit.tree = tree_id
    commit.author = commit.committer = COMMIT_AUTHOR
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = COMMIT_MESSAGE
    return commit


def write_git_repo(served: ServedSet, dest: Path, *, level: int | None = None) -> str:
    """Write a bare repository with one commit of the served layout as a single pack.

    Blobs are hashed and compressed on two threads (hashlib and zlib release the GIL).
    Returns the commit id (hex).
    """
    files = list(iter_files(served))
    # zlib level of pack objects (AGNES_MARKETPLACE_PACK_LEVEL, default 0): stored objects clone
    # fastest on a LAN (bench/served_marketplace.py); 1 builds ~2x faster than git's default 6 for
    # ~5% more bytes, and sends ~0.6x the bytes of 0, which pays on slow links.
    level = int(current_app.config["AGNES_MARKETPLACE_PACK_LEVEL"]) if level is None else level
    with ThreadPoolExecutor(max_workers=2) as pool:
        blobs = list(pool.map(lambda entry: _blob_record(entry, level), files, chunksize=16))
    root: dict[bytes, Any] = {}
    for entry, (sha, _record) in zip(files, blobs, strict=True):
        parts = entry.path.encode().split(b"/")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = (entry.mode, binascii.hexlify(sha))
    trees: list[Tree] = []

    def make_tree(node: dict[bytes, Any]) -> Tree:
        tree = Tree()
        for name, value in node.items():
            if isinstance(value, dict):
                tree.add(name, 0o040000, make_tree(value).id)
            else:
                tree.add(name, value[0], value[1])
        trees.append(tree)
        return tree

    commit = deterministic_commit(make_tree(root).id)
    records = []
    for obj in [commit, *reversed(trees)]:
        raw = obj.as_raw_string()
        record = _pack_header(obj.type_num, len(raw)) + zlib.compress(raw, level)
        records.append((obj.sha().digest(), record))
    records.extend(blobs)
    _write_pack(dest, records, commit.id)
    return commit.id.decode()


def _write_pack(dest: Path, records: list[tuple[bytes, bytes]], head: bytes) -> None:
    for sub in ("objects/pack", "objects/info", "refs/heads", "refs/tags"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    (dest / "HEAD").write_bytes(b"ref: " + BRANCH + b"\n")
    (dest / "config").write_bytes(b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n")
    refs = b"# pack-refs with: peeled fully-peeled sorted \n" + head + b" " + BRANCH + b"\n"
    (dest / "packed-refs").write_bytes(refs)
    seen: set[bytes] = set()
    unique = []
    for sha, record in records:  # identical files share one blob
        if sha not in seen:
            seen.add(sha)
            unique.append((sha, record))
    checksum = hashlib.sha1()
    index = []
    tmp = dest / "objects" / "pack" / "tmp.pack"
    with open(tmp, "wb") as fh:
        header = b"PACK" + struct.pack(">LL", 2, len(unique))
        fh.write(header)
        checksum.update(header)
        offset = len(header)
        for sha, record in unique:
            index.append((sha, offset, binascii.crc32(record)))
            fh.write(record)
            checksum.update(record)
            offset += len(record)
        pack_sha = checksum.digest()
        fh.write(pack_sha)
    base = dest / "objects" / "pack" / f"pack-{pack_sha.hex()}"
    index.sort()
    with open(str(base) + ".idx", "wb") as fh:
        write_pack_index(fh, index, pack_sha)
    os.rename(tmp, str(base) + ".pack")


def _build_once(final: Path, build: Any) -> Path:
    """Build into a unique temporary sibling and rename it into place (first one wins)."""
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}.{new_id()}")
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
    os.utime(final)
    return final


def git_repo(served: ServedSet) -> Path:
    """The cached bare repository of a served set (built on first use)."""
    return _build_once(cache_root() / "git-cache" / f"{served.etag}.git", lambda tmp: write_git_repo(served, tmp))


# -- zip ---------------------------------------------------------------------------------------


def write_zip(served: ServedSet, dest: Path) -> None:
    """Deterministic ZIP: members in path order, fixed 1980 timestamps, 0644/0755 modes."""
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_COMPRESSION) as zf:
        for entry in iter_files(served):
            info = zipfile.ZipInfo(entry.path, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((0o100755 if entry.mode == 0o100755 else 0o100644) & 0xFFFF) << 16
            info.create_system = 3
            zf.writestr(info, entry.read())


def zip_file(served: ServedSet) -> Path:
    """The cached ZIP of a served set (built on first use)."""
    return _build_once(cache_root() / "zip-cache" / f"{served.etag}.zip", lambda tmp: write_zip(served, tmp))


# -- pruning -----------------------------------------------------------------------------------


def prune_caches(grace: float = PRUNE_GRACE) -> dict[str, int]:
    """Delete cached artifacts of ETags no active user resolves to any more.

    Artifacts touched within ``grace`` seconds are kept (a download may be in flight).
    Returns ``{"kept": n, "removed": n}``.
    """
    data_dir = Path(current_app.config["AGNES_DATA_DIR"])
    with state_store().read() as con:
        live = all_served_etags(con, data_dir)
    kept = removed = 0
    now = time.time()
    for sub, suffix in (("git-cache", ".git"), ("zip-cache", ".zip")):
        folder = cache_root() / sub
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            etag = path.name.removesuffix(suffix)
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if etag in live or age < grace:
                kept += 1
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return {"kept": kept, "removed": removed}

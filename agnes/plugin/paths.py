"""Reading files of a plugin's working copy safely: paths named in URLs, size-capped reads.

A URL segment names a skill, agent or command file. It must never reach outside the plugin:
no absolute paths, no ``..`` segments, no backslashes (Windows separators), no NUL, and no
symlink whose target lies outside the plugin root (a repository can ship one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Longest relative path accepted, in characters.
MAX_RELPATH = 1024
# Files read per component, in bytes; bigger files are cut (a prompt is not 1 MB).
MAX_FILE_BYTES = 512 * 1024


def safe_join(root: str | os.PathLike[str], relpath: str) -> Path | None:
    """``root / relpath`` if it exists and stays inside ``root`` after following symlinks, else None.

    Args:
        root: the plugin directory (may itself be reached through a symlink).
        relpath: a ``/``-separated path relative to ``root``.

    Returns:
        The resolved path, or None when ``relpath`` is unsafe, missing, or escapes ``root``.
    """
    if not relpath or len(relpath) > MAX_RELPATH or "\\" in relpath or "\x00" in relpath:
        return None
    if relpath.startswith("/") or (len(relpath) > 1 and relpath[1] == ":"):
        return None
    parts = relpath.split("/")
    if any(part in ("..",) for part in parts):
        return None
    try:
        base = Path(root).resolve(strict=True)
        target = (base / relpath).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if target != base and base not in target.parents:
        return None
    return target


def is_inside(root: Path, path: Path) -> bool:
    """True when ``path`` (after following symlinks) lies inside the resolved ``root``."""
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return False
    return resolved == root or root in resolved.parents


def read_text(path: Path) -> tuple[str, bool]:
    """File text (utf-8, undecodable bytes replaced) and whether it was cut at MAX_FILE_BYTES."""
    with path.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    return data[:MAX_FILE_BYTES].decode("utf-8", errors="replace"), len(data) > MAX_FILE_BYTES


def load_json(path: Path | None) -> Any:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(read_text(path)[0])
    except (ValueError, OSError):
        return None

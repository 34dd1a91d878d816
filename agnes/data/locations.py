"""Which server files a table may read: only those under ``AGNES_DATA_SOURCE_DIRS``.

Admins choose a table's source, but they are not trusted with the server's own files: the
state directory holds the key that signs sessions (``state/secret_key``) and the secrets overlay
(``state/.env_overlay``). So a file location must resolve, after symlinks, inside one of the
directories an operator listed in ``AGNES_DATA_SOURCE_DIRS`` (none by default: local files are
off until one is listed) and never inside ``AGNES_DATA_DIR``. URLs are not affected.

The check runs when a table is registered or changed (a refusal is a 422 naming the field and
the setting) and again when it is synced, on the resolved files, because a symlink can change
after registration. DuckDB queries of the ``sql`` connector run with external access off
except for the same directories (:func:`restricted_connection`).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import duckdb
from flask import current_app

from agnes.errors import AppError

log = logging.getLogger(__name__)

SETTING = "AGNES_DATA_SOURCE_DIRS"
# Characters that make a location a glob pattern.
GLOB_CHARS = "*?["


class LocationRefused(AppError):
    """422: a file location outside ``AGNES_DATA_SOURCE_DIRS`` (or inside the data directory)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(422, "location_not_allowed", message, field=field)


def _literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def source_roots(data_dir: Path | None = None, dirs: Iterable[str] | None = None) -> list[Path]:
    """The listed source directories, resolved (symlinks followed), in the setting's order.

    Defaults come from the current app's config. A listed directory inside the data directory is
    dropped (with a warning): nothing under ``AGNES_DATA_DIR`` is ever a table source.
    """
    data_dir = Path(data_dir or current_app.config["AGNES_DATA_DIR"]).resolve()
    listed = (current_app.config.get(SETTING) or []) if dirs is None else dirs
    roots = []
    for raw in listed:
        root = Path(raw).expanduser().resolve()
        if _inside(root, data_dir):
            log.warning("%s lists %s, which is inside AGNES_DATA_DIR; it is ignored", SETTING, root)
            continue
        roots.append(root)
    return roots


def _refusal(location: str, roots: list[Path], field: str, why: str = "") -> LocationRefused:
    if not roots:
        return LocationRefused(
            f"Local files are off: {location} is not under a directory listed in {SETTING}"
            " (ask the operator to list the folder the files are in, or use an http(s) URL).",
            field=field,
        )
    listed = ", ".join(str(r) for r in roots)
    return LocationRefused(
        f"{location} {why or 'is not under a directory listed in ' + SETTING} (listed: {listed}).",
        field=field,
    )


def allowed(path: Path, roots: list[Path], data_dir: Path) -> bool:
    """True when ``path`` (already resolved) is under a root and not under the data directory."""
    return any(_inside(path, root) for root in roots) and not _inside(path, data_dir.resolve())


def check_location(location: str, *, field: str, data_dir: Path | None = None, roots: list[Path] | None = None) -> Path:
    """The absolute path of a server location, when it is allowed (registration and update).

    A glob is checked on its directory part (the files it matches are checked at sync time).
    Relative paths are refused: a path must say where it is.

    Raises:
        LocationRefused: outside the listed directories, inside the data directory, or relative.
    """
    data_dir = Path(data_dir or current_app.config["AGNES_DATA_DIR"])
    roots = source_roots(data_dir) if roots is None else roots
    path = Path(location).expanduser()
    if not path.is_absolute():
        raise LocationRefused(
            f"Use an absolute path under a directory listed in {SETTING}, not {location!r}.", field=field
        )
    fixed = Path(*[part for part in _prefix_parts(path)])
    resolved = fixed.resolve()
    if not allowed(resolved, roots, data_dir):
        shown = "" if resolved == fixed else f"resolves to {resolved}, which "
        if _inside(resolved, data_dir.resolve()):
            why = f"{shown}is inside the data directory"
        else:
            why = f"{shown}is outside the allowed directories" if shown else ""
        raise _refusal(location, roots, field, why)
    return path


def _prefix_parts(path: Path) -> list[str]:
    """The leading parts of ``path`` before the first one with a glob character."""
    parts = []
    for part in path.parts:
        if any(ch in part for ch in GLOB_CHARS):
            break
        parts.append(part)
    return parts


def resolve_files(location: str, *, data_dir: Path, roots: list[Path], field: str = "spec.location") -> list[str]:
    """The real paths of the files a location names now (sync time), each one checked.

    Returns the resolved path of each matching file (a glob's matches, sorted), so DuckDB reads
    exactly what was checked, not a symlink that could be switched afterwards.

    Raises:
        LocationRefused: the location or a file it matches resolves outside the allowed directories.
        FileNotFoundError: nothing matches.
    """
    path = check_location(location, field=field, data_dir=data_dir, roots=roots)
    names = sorted(glob.glob(str(path))) if any(ch in str(path) for ch in GLOB_CHARS) else [str(path)]
    found = []
    for name in names:
        real = Path(os.path.realpath(name))
        if not allowed(real, roots, data_dir):
            raise _refusal(name, roots, field, f"resolves to {real}, outside the allowed directories")
        if real.is_file():
            found.append(str(real))
    if not found:
        raise FileNotFoundError(str(path))
    return found


def restricted_connection(
    *,
    data_dir: Path,
    roots: list[Path],
    attach: dict[str, str] | None = None,
    extra_dirs: Iterable[Path] = (),
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that can read only the source directories and ``extra_dirs``.

    ``attach`` maps aliases to DuckDB files attached read-only first (the analytics database,
    which must be named ``analytics`` to become the default). Then external access is switched off
    except for ``allowed_directories``, extension loading is off, and the configuration is locked
    so a query cannot switch it back. A source directory that contains the data directory is left
    out (DuckDB cannot exclude a subdirectory); files there remain readable by the file connectors.
    """
    data_root = data_dir.resolve()
    dirs = [r for r in roots if not _inside(data_root, r)] + [Path(d) for d in extra_dirs]
    con = duckdb.connect(":memory:")
    try:
        for alias, file in (attach or {}).items():
            con.execute(f'ATTACH {_literal(str(file))} AS "{alias}" (READ_ONLY)')
            if alias == "analytics":
                con.execute("USE analytics")
        listed = ", ".join(_literal(str(d).rstrip("/") + "/") for d in dirs)
        con.execute(f"SET allowed_directories = [{listed}]")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con

"""The flea market's files: ``<AGNES_DATA_DIR>/flea/store/<entity id>/v<number>/``.

A version's folder is written once, atomically (into a hidden temporary folder beside it, then
renamed), and never changed: approving or rolling back only changes which number is served.
Only this module touches the folders.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from flask import current_app

from agnes.errors import AppError


def store_root() -> Path:
    return Path(current_app.config["AGNES_DATA_DIR"]) / "flea" / "store"


def entity_dir(entity_id: str) -> Path:
    return store_root() / entity_id


def version_dir(entity_id: str, number: int) -> Path:
    return entity_dir(entity_id) / f"v{number}"


def write_version(entity_id: str, number: int, files: dict[str, bytes]) -> Path:
    """Write a version's files (``{relative path: bytes}``, already checked safe) atomically.

    A folder left by a unit of work that did not commit (a crash between rename and commit) is
    replaced: no row names it. Returns the folder.
    """
    final = version_dir(entity_id, number)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".v{number}.tmp-{uuid.uuid4().hex}"
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_version(entity_id: str, number: int) -> None:
    """Delete one version's files (a unit that did not commit, or a purged blocked bundle)."""
    shutil.rmtree(version_dir(entity_id, number), ignore_errors=True)


def remove_entity(entity_id: str) -> None:
    shutil.rmtree(entity_dir(entity_id), ignore_errors=True)


def list_files(entity_id: str, number: int) -> list[tuple[str, int]]:
    """``[(relative path, size in bytes)]`` of a version, sorted; [] when its files are gone."""
    root = version_dir(entity_id, number)
    found: list[tuple[str, int]] = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            found.append((os.path.relpath(full, root).replace(os.sep, "/"), os.path.getsize(full)))
    return sorted(found)


def read_files(entity_id: str, number: int) -> dict[str, bytes]:
    """Every file of a version: ``{relative path: bytes}``."""
    root = version_dir(entity_id, number)
    return {rel: (root / rel).read_bytes() for rel, _size in list_files(entity_id, number)}


def read_file(entity_id: str, number: int, rel: str) -> bytes:
    """One file of a version.

    Raises:
        AppError: 404 ``file_not_found`` (no such file, or a path leaving the folder).
    """
    root = version_dir(entity_id, number).resolve()
    target = (root / rel).resolve()
    if root not in target.parents or not target.is_file():
        raise AppError(404, "file_not_found", f"There is no file '{rel}' in version {number}.", field="path")
    return target.read_bytes()

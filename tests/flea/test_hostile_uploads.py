"""Hostile archives through the real upload API: each gets its status and code, and the flea tables,
the audit log and the data directory are the same before and after (issue 11, "Done when")."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from agnes.state import state_store
from tests.flea import hostile
from tests.flea.conftest import People, upload, wait_jobs
from tests.flea.hostile import SKILL_MD, build_zip


def _snapshot(app: Flask) -> tuple[Any, ...]:
    wait_jobs(app)  # jobs of earlier tests (review, marker bumps after commit) end first
    with state_store().read() as con:
        rows = tuple(
            con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("flea_entities", "flea_versions", "flea_installs", "flea_handles")
        )
        # Every unsafe request gets its request audit row; no flea action may be recorded.
        rows += con.execute("SELECT count(*) FROM audit_log WHERE action LIKE 'flea.%'").fetchone()
    root = Path(app.config["AGNES_DATA_DIR"])
    files = tuple(
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if "state" not in p.relative_to(root).parts[:1])
    )
    return rows, files


@pytest.fixture(autouse=True)
def _collect_spooled_uploads() -> Iterator[None]:
    """The test client spools a big multipart body to a temporary file that a refused request
    never closes; collect it after each test rather than during a later one."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return hostile.bomb(100)


CASES = {
    "zip slip ..": (lambda: build_zip({"SKILL.md": SKILL_MD, "../../evil.md": b"x"}), 422, "zip_unsafe_path"),
    "absolute path": (lambda: build_zip({"SKILL.md": SKILL_MD, "/etc/evil": b"x"}), 422, "zip_unsafe_path"),
    "backslash": (lambda: build_zip({"SKILL.md": SKILL_MD, "..\\evil.md": b"x"}), 422, "zip_unsafe_path"),
    "drive letter": (lambda: build_zip({"SKILL.md": SKILL_MD, "C:/evil.md": b"x"}), 422, "zip_unsafe_path"),
    "NUL": (hostile.with_nul_name, 422, "zip_unsafe_path"),
    "symlink": (lambda: hostile.with_mode("link", hostile.EXAMPLE_MODES["symlink"]), 422, "zip_symlink"),
    "device": (lambda: hostile.with_mode("dev", hostile.EXAMPLE_MODES["device"]), 422, "zip_symlink"),
    "hard link": (hostile.hard_link, 422, "zip_symlink"),
    "10,000 entries": (lambda: hostile.many_entries(10_000), 422, "too_many_files"),
    "encrypted": (hostile.encrypted, 422, "zip_encrypted"),
    "case duplicates": (lambda: build_zip({"SKILL.md": SKILL_MD, "a.md": b"1", "A.md": b"2"}), 422,
                        "zip_duplicate_path"),
    "ELF": (lambda: build_zip({"SKILL.md": SKILL_MD, "bin/tool": hostile.ELF_HEADER}), 422, "disallowed_file"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_archive_is_refused_and_changes_nothing(
    flea_app: Flask, api: FlaskClient, folks: People, case: str
) -> None:
    build, status, code = CASES[case]
    before = _snapshot(flea_app)
    res = upload(api, folks.owner, build(), filename="upload.zip", name="hostile")
    assert (res.status_code, res.get_json()["error"], res.get_json()["field"]) == (status, code, "file")
    assert _snapshot(flea_app) == before


def test_a_100_kb_bomb_is_refused_and_changes_nothing(
    flea_app: Flask, api: FlaskClient, folks: People, bomb: bytes
) -> None:
    before = _snapshot(flea_app)
    res = upload(api, folks.owner, bomb, filename="bomb.zip", name="hostile")
    assert (res.status_code, res.get_json()["error"]) == (413, "zip_too_large_uncompressed")
    assert _snapshot(flea_app) == before

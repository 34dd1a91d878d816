"""Shared file primitives: atomic replacement under concurrency, mode from the start, locks."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from agnes.files import atomic_write_text, file_lock


def test_atomic_write_from_many_threads_never_fails_or_mixes(tmp_path: Path) -> None:
    target = tmp_path / "marker"
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                atomic_write_text(target, f"{n}-{i}" * 100, mode=0o600)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    text = target.read_text()
    assert text == text[: len(text) // 100] * 100  # one writer's whole content
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["marker"]  # no temporary files left


def test_file_lock_serializes_threads(tmp_path: Path) -> None:
    inside = []
    overlap = []

    def worker() -> None:
        with file_lock(tmp_path / "x.lock"):
            inside.append(1)
            if len(inside) > 1:
                overlap.append(1)
            threading.Event().wait(0.01)
            inside.pop()

    # flock locks are per open file description, so threads opening the file separately exclude each other.
    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []

"""Job functions for the shutdown tests (worker processes import them by dotted path)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def run_slow(workdir: str, first_attempt_seconds: float) -> str:
    """A job that is slow on its first attempt and quick afterwards.

    Each attempt leaves a file in ``<workdir>/attempts`` when it starts; the result is written
    only at the end, atomically (temp file + rename) to ``<workdir>/result.txt``, so an attempt
    stopped half-way leaves no result behind.
    """
    root = Path(workdir)
    attempts = root / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    number = len(list(attempts.iterdir())) + 1
    (attempts / f"{number}-{os.getpid()}").write_text("started")
    time.sleep(first_attempt_seconds if number == 1 else 0.2)
    tmp = root / f".result.{os.getpid()}.tmp"
    tmp.write_text(f"done by attempt {number}")
    os.replace(tmp, root / "result.txt")
    return f"attempt {number}"

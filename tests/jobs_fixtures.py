"""Importable job functions for tests (RQ workers import jobs by dotted path)."""

from __future__ import annotations

from pathlib import Path

from agnes.jobs import set_progress


def run_flaky(marker: str) -> str:
    """Fails until the marker file exists, then succeeds (for retry tests)."""
    if not Path(marker).exists():
        Path(marker).write_text("seen")
        raise ValueError("first attempt fails on purpose")
    return "ok"


def run_always_fails() -> None:
    raise RuntimeError("token=agnes_pat_SECRETSECRET leaked?")


def run_with_progress(steps: int) -> int:
    for i in range(steps):
        set_progress(i + 1, steps, f"step {i + 1}")
    return steps

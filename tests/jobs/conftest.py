"""Job functions for the jobs tests. They are plain functions, not fixtures: RQ stores a job's
function by dotted path (``tests.jobs.conftest.run_flaky``) and the worker imports it from there, so
tests import them (``from tests.jobs.conftest import run_flaky``) and enqueue them."""

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

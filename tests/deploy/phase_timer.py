"""pytest plugin ``make test`` loads (``-p tests.deploy.phase_timer``): a line with the time of the
tests phase and of the whole run, printed just before pytest's closing summary line."""

from __future__ import annotations

import os
import time

import pytest


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    tests_started = os.environ.get("AGNES_MAKE_TEST_TOOLS_DONE")
    make_started = os.environ.get("AGNES_MAKE_TEST_STARTED")
    if not tests_started:
        return
    now = time.time()
    line = f"make test: tests phase took {now - float(tests_started):.0f} s"
    if make_started:
        line += f"; install + tools + tests took {now - float(make_started):.0f} s in all"
    terminalreporter.write_line(line)

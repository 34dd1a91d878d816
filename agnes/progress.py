"""Progress reports from long domain operations to whoever runs them.

Domain code (a marketplace sync, a table extract) never imports :mod:`agnes.jobs`; it takes a
``progress`` callable instead, and the job function that runs it passes
:func:`agnes.jobs.set_progress` (pages then show a determinate bar). Called outside a job, the
default does nothing.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``progress(done, total, message)``: ``done`` of ``total`` units (``total`` None when unknown)."""

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None: ...


def no_progress(done: int, total: int | None = None, message: str = "") -> None:
    """The default reporter: progress goes nowhere."""

"""Sizes and counts as people read them: one unit system everywhere (IEC binary: KiB, MiB, GiB).

Settings named ``*_MB``/``*_KB`` are multiplied by 1024 as well, so a limit and the size a page
shows for it agree. The ``agnes`` CLI (which does not import this package) formats the same way
in ``cli/output.py``.
"""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def filesize(num: int | float | None) -> str:
    """``4.7 MiB``: bytes in the largest IEC unit below 1024 (whole bytes, else one decimal);
    ``""`` for None."""
    if num is None:
        return ""
    size = float(num)
    for unit in UNITS:
        if abs(size) < 1024 or unit == UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def count(n: int, one: str, many: str | None = None) -> str:
    """``1 row``, ``336,776 rows`` (thousands separated)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def page_count(total: int, per_page: int) -> int:
    """Pages needed to show ``total`` rows ``per_page`` at a time; at least 1 (an empty list is one page)."""
    return max(1, -(-total // per_page))

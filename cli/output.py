"""Printing results: aligned tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Plain aligned columns (no box drawing: works on any console and when piped)."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        click.echo(line)
        if index == 0:
            click.echo("  ".join("-" * w for w in widths))


def print_listing(
    items: Sequence[Any], as_json: bool, row: Callable[[Any], Sequence[Any]], headers: Sequence[str]
) -> None:
    """A list command's output: ``items`` as JSON with ``--json``, else one table row per item."""
    if as_json:
        print_json(items)
    else:
        print_table([row(item) for item in items], headers)


def success(message: str) -> None:
    click.echo(message)

"""Closed vocabularies of the data area."""

from __future__ import annotations

from enum import StrEnum


class QueryMode(StrEnum):
    """Where a table's rows live (DESIGN.md, "Data distribution").

    * ``local``: extracted to parquet and pulled by analysts;
    * ``materialized``: admin SQL run on a schedule, result written to parquet and pulled;
    * ``remote``: a view only, queried at the source; never pulled.
    """

    LOCAL = "local"
    MATERIALIZED = "materialized"
    REMOTE = "remote"

    @property
    def has_file(self) -> bool:
        return self is not QueryMode.REMOTE

"""``claude_code_settings_downloads``: each managed-settings.json an admin downloaded, per group.

The page compares the file it would produce now with the group's previous download, so an
admin redeploying through MDM sees what changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from duckdb import DuckDBPyConnection

from agnes.models import Record, new_id, utcnow


@dataclass(frozen=True)
class SettingsDownload(Record):
    id: str
    group_id: str
    strict: bool
    content: str
    sha256: str
    downloaded_by: str | None
    downloaded_at: datetime


_COLUMNS = "id, group_id, strict, content, sha256, downloaded_by, downloaded_at"


def create_settings_download(
    con: DuckDBPyConnection, group_id: str, content: str, *, strict: bool, downloaded_by: str | None
) -> SettingsDownload:
    """Record a download of ``content`` (the file's text) for ``group_id``."""
    row = SettingsDownload(
        new_id(), group_id, strict, content, hashlib.sha256(content.encode()).hexdigest(), downloaded_by, utcnow()
    )
    con.execute(
        f"INSERT INTO claude_code_settings_downloads ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [row.id, row.group_id, row.strict, row.content, row.sha256, row.downloaded_by, row.downloaded_at],
    )
    return row


def get_last_settings_download(con: DuckDBPyConnection, group_id: str) -> SettingsDownload | None:
    """The group's most recent download, or None."""
    row = con.execute(
        f"SELECT {_COLUMNS} FROM claude_code_settings_downloads WHERE group_id = ?"
        " ORDER BY downloaded_at DESC, id DESC LIMIT 1",
        [group_id],
    ).fetchone()
    return SettingsDownload(*row) if row else None

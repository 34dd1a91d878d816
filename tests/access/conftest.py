"""Access-administration fixtures: an admin browser session, parsing, and (for tests marked
``synced_marketplaces``) the fixture marketplaces synced once per session, shared with
``tests/marketplace/`` (its ``synced_template`` and ``app_config`` fixtures are re-used here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from flask.testing import FlaskClient

from tests.conftest import csrf_token
from tests.marketplace.conftest import app_config, synced_template  # noqa: F401 (fixtures used by marked tests)

HX = {"HX-Request": "true"}


@pytest.fixture
def admin(client: FlaskClient, auth):  # type: ignore[no-untyped-def]
    """The test client signed in as the seed admin."""
    auth.login("admin@example.com", admin=True)
    return client


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.data, "html.parser")


def form_token(client: FlaskClient) -> str:
    return csrf_token(client, "/me")


def register_tables(names: list[str], *, source: str = "crm") -> list[str]:
    """Register CSV tables (not synced) named ``names`` under one source, their files in the test
    app's first ``AGNES_DATA_SOURCE_DIRS``; returns their ids."""
    from flask import current_app

    from agnes.data.registration import register_table

    folder = Path(current_app.config["AGNES_DATA_SOURCE_DIRS"][0]) / "access-tables"
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for name in names:
        (folder / f"{name}.csv").write_text("a,b\n1,x\n")
        entry = register_table(
            {
                "id": name,
                "name": name,
                "source_type": "csv",
                "source_name": source,
                "source_spec": {"location": str(folder / f"{name}.csv")},
            },
            owner_id=None,
        )
        ids.append(entry.id)
    return ids


def count_rows(table: str) -> int:
    from agnes.state import state_store

    with state_store().read() as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # table names are literals in tests

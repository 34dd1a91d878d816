"""Telemetry attributes ``<name>-by-<handle>:<item>`` to its flea-market entry (its own plugin in
the served marketplace, not a shared bundle), also for a user who has it installed."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from agnes.state import state_store
from agnes.telemetry import attribution
from tests.conftest import bearer
from tests.flea.conftest import People, approve, skill_md, upload


def test_flea_prefix_is_attributed_to_its_entry(flea_app: Flask, api: FlaskClient, folks: People):
    res = upload(api, folks.owner, skill_md("attributed"), name="attributed")
    entity_id = res.get_json()["entity"]["id"]
    approve(api, folks.admin, res.get_json()["version"]["id"])
    api.post(f"/api/flea/entities/{entity_id}/install", headers=bearer(folks.colleague))
    with state_store().read() as con:
        attributor = attribution.load(con, Path(flea_app.config["AGNES_DATA_DIR"]))
    for user_id in (folks.colleague_id, folks.owner_id):
        found = attributor.attribute(user_id, "attributed-by-alice-smith:attributed")
        assert (found.source, found.parent, found.parent_name, found.item_name) == (
            "flea",
            entity_id,
            "attributed",
            "attributed",
        )
    assert attributor.attribute(folks.colleague_id, "nobody-by-nobody:x").source == "unattributed"
    legacy = attributor.attribute(folks.colleague_id, "agnes-store-bundle:attributed-by-alice-smith")
    assert (legacy.source, legacy.parent) == ("flea", entity_id)

"""Keboola Storage tables: listed so admins see it is planned; not available yet."""

from __future__ import annotations

from agnes.data.connectors import Connector

CONNECTOR = Connector(
    type="keboola",
    label="Keboola",
    description="Tables from Keboola Storage buckets (not yet available).",
    available=False,
)

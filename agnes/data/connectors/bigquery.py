"""Google BigQuery tables and queries: listed so admins see it is planned; not available yet."""

from __future__ import annotations

from agnes.data.connectors import Connector

CONNECTOR = Connector(
    type="bigquery",
    label="BigQuery",
    description="Tables and queries from Google BigQuery (not yet available).",
    available=False,
)

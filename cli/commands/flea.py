"""``agnes flea upload``: publish a skill, agent, command or plugin to the flea market.

Posts the same multipart form as the upload page (``POST /api/flea/entities``, or
``/api/flea/entities/<id>/versions`` for a new version); the server checks, scans and queues the
review. Flea entries are then found with ``agnes marketplace search --tab flea`` and added with
``agnes marketplace install <id>``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import click

from cli.client import Response, error_from, from_config
from cli.output import print_json

CATEGORIES = (
    "Code & Engineering",
    "Data & Analytics",
    "Documentation",
    "Productivity",
    "Communication",
    "DevOps & Infra",
    "Security",
    "Research",
    "Other",
)


def multipart(fields: dict[str, str], file_field: str, path: Path) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of ``fields`` and one file; returns (body, content type)."""
    boundary = f"agnes-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    filename = path.name.replace('"', "")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + path.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@click.group()
def flea() -> None:
    """The flea market: skills and plugins your colleagues publish."""


@flea.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--type", "kind", type=click.Choice(["skill", "agent", "command", "plugin"]), default="skill", show_default=True
)
@click.option("--name", default="", help="Entry name: lowercase letters, digits, dashes (v1 only).")
@click.option("--category", type=click.Choice(CATEGORIES), default="Other", show_default=True, help="(v1 only)")
@click.option("--description", default="", help="Shown on the card (v1; defaults to the file's own).")
@click.option("--entity", "entity_id", default="", help="Upload a new version of this entry (its id).")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON answer.")
def upload(file: Path, kind: str, name: str, category: str, description: str, entity_id: str, as_json: bool) -> None:
    """Publish FILE (a ZIP, a SKILL.md or an agent/command .md); it is reviewed before anyone gets it."""
    if not entity_id and not name:
        raise click.UsageError("--name is required for a new entry (or --entity ID for a new version)")
    fields = {"type": kind}
    if not entity_id:
        fields.update(name=name, category=category, description=description)
    body, content_type = multipart(fields, "file", file)
    client = from_config()
    path = f"/api/flea/entities/{entity_id}/versions" if entity_id else "/api/flea/entities"
    raw = client.open("POST", path, body=body, headers={"Content-Type": content_type})
    response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read(), client.server)
    if response.status not in (200, 201):
        payload = _json(response.body)
        for finding in (payload or {}).get("findings") or []:
            click.echo(f"  {finding['file']}:{finding['line']} {finding['rule']}: {finding['message']}", err=True)
        raise error_from(response)
    data = _json(response.body) or {}
    if as_json:
        print_json(data)
        return
    entity, version = data["entity"], data["version"]
    click.echo(f"Uploaded {entity['name']} version {version['number']} (entry {entity['id']}).")
    click.echo("It is under review; follow it with 'agnes marketplace show " + entity["id"] + "'.")


def _json(body: bytes) -> dict | None:  # type: ignore[type-arg]
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None

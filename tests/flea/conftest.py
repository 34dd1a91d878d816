"""Flea-market fixtures: a module-scoped app (embedded jobs, no reviewer key unless a module sets
one), three people (owner ``alice``, colleague ``bob``, an admin) with tokens, and upload helpers.

Helpers take arguments, so tests import them: ``from tests.flea.conftest import upload, skill_md``.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from agnes.app import create_app
from tests.conftest import IsolatedClient, bearer

OWNER = "alice.smith@example.com"
COLLEAGUE = "bob@example.com"
ADMIN = "admin@example.com"


def skill_md(name: str = "sql-helper", body: str = "") -> bytes:
    text = (
        f"---\nname: {name}\ndescription: Writes careful SQL for the analytics warehouse and explains each join.\n"
        f"---\n\n# {name}\n\nUse this skill when a question needs SQL over the warehouse tables.\n{body}"
    )
    return text.encode()


def plugin_zip(name: str = "toolkit", version_text: str = "v1", extra: dict[str, bytes] | None = None) -> bytes:
    """A plugin ZIP (one top folder) with a plugin.json, one skill and one command."""
    files = {
        f"{name}/.claude-plugin/plugin.json": (
            f'{{"name": "{name}", "version": "0.1.0", "description": "A toolkit of careful analytics helpers."}}'
        ).encode(),
        f"{name}/skills/report/SKILL.md": skill_md("report", f"\nRevision {version_text}.\n"),
        f"{name}/commands/tidy.md": (
            b"---\ndescription: Tidies the current SQL file and explains every change it makes.\n---\n\nTidy it.\n"
        ),
    }
    for path, data in (extra or {}).items():
        files[f"{name}/{path}"] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return buf.getvalue()


def upload(
    client: FlaskClient,
    token: str,
    data: bytes,
    *,
    filename: str = "SKILL.md",
    kind: str = "skill",
    name: str = "sql-helper",
    category: str = "Data & Analytics",
    entity_id: str | None = None,
    path: str | None = None,
    description: str | None = None,
) -> Any:
    """POST a multipart upload (v1, or a new version when ``entity_id`` is given)."""
    url = path or (f"/api/flea/entities/{entity_id}/versions" if entity_id else "/api/flea/entities")
    # Encoded in memory: the test client would spool a large body to a temporary file that a request
    # refused before reading it (413, a refused archive) leaves open for a later test to warn about.
    boundary, body = encode_multipart(
        MultiDict(
            {
                "file": FileStorage(io.BytesIO(data), filename=filename),
                "type": kind,
                "name": name,
                "category": category,
                **({"description": description} if description is not None else {}),
            }
        )
    )
    return client.post(url, data=body, headers=bearer(token), content_type=f"multipart/form-data; boundary={boundary}")


@dataclass
class People:
    owner: str
    colleague: str
    admin: str
    owner_id: str
    colleague_id: str
    admin_id: str


def make_people(app: Flask) -> People:
    from agnes import people, signals
    from agnes.auth.pat import create_pat
    from agnes.models import groups, users
    from agnes.state import state_store

    def user(email: str, admin: bool = False) -> str:
        with state_store().read() as con:
            found = users.get_user_by_email(con, email)
        user_id = found.id if found else people.create_user(email).id
        if admin:
            with state_store().write() as con:
                if groups.add_member(con, "admin", user_id):
                    signals.membership_changed.send(None, con=con, user_id=user_id, group_id="admin")
        return user_id

    ids = [user(OWNER), user(COLLEAGUE), user(ADMIN, admin=True)]
    tokens = [create_pat(uid, "test", 30)[1] for uid in ids]
    return People(*tokens, *ids)


def make_app(tmp: Any, **config: Any) -> Flask:
    application = create_app(
        {
            "TESTING": True,
            "AGNES_DATA_DIR": str(tmp / "data"),
            "AGNES_SEED_ADMIN_EMAIL": ADMIN,
            "AGNES_BASE_URL": "http://localhost",
            "REDIS_URL": "",
            "AGNES_LOG_LEVEL": "WARNING",
            "ANTHROPIC_API_KEY": "",
            **config,
        }
    )
    application.test_client_class = IsolatedClient
    return application


@pytest.fixture(scope="module")
def flea_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """One app per test module (embedded jobs, no reviewer key: reviews wait, "no reviewer")."""
    application = make_app(tmp_path_factory.mktemp("flea"))
    ctx = application.app_context()
    ctx.push()
    yield application
    application.extensions["agnes_jobs"].wait_idle()
    ctx.pop()


@pytest.fixture(scope="module")
def folks(flea_app: Flask) -> People:
    return make_people(flea_app)


@pytest.fixture
def api(flea_app: Flask) -> FlaskClient:
    return flea_app.test_client()


def wait_jobs(app: Flask) -> None:
    backend = app.extensions["agnes_jobs"]
    if hasattr(backend, "wait_idle"):
        backend.wait_idle()


def approve(client: FlaskClient, admin_token: str, version_id: str) -> Any:
    return client.post(f"/api/admin/flea/versions/{version_id}/approve", headers=bearer(admin_token))


def matrix_entity(owner_id: str, *, approved: bool = True, name: str | None = None) -> tuple[str, str]:
    """An entity owned by ``owner_id`` (one skill version, approved unless told): ``(entity id, version id)``.
    For the authorization matrix (no request: published through the service)."""
    import secrets

    from agnes.access import AuthMethod, Principal
    from agnes.flea import review, service
    from agnes.models import users
    from agnes.state import state_store

    with state_store().read() as con:
        user = users.get_user(con, owner_id)
    assert user is not None
    principal = Principal(user, (), AuthMethod.SESSION)
    entity_name = name or f"matrix-{secrets.token_hex(4)}"
    published = service.publish(
        principal,
        data=skill_md(entity_name),
        filename="SKILL.md",
        kind="skill",
        name=entity_name,
        category="Other",
    )
    if approved:
        review.approve(published.version.id, owner_id)
    return published.entity.id, published.version.id

"""Admin page listing every personal access token, with revoke."""

from __future__ import annotations

from flask import Blueprint, url_for

from agnes.access import admin_required
from agnes.auth.pat import list_pats, revoke_pat
from agnes.htmx import fragment_or_redirect, render

bp = Blueprint("admin_tokens", __name__, url_prefix="/admin/tokens")


def tokens_data() -> dict[str, object]:
    return {"tokens": list_pats(None)}


@bp.get("")
@admin_required
def list_tokens():  # type: ignore[no-untyped-def]
    """All users' tokens: owner, last use, status."""
    return render("admin/tokens.html", "admin/_tokens_table.html", **tokens_data())


@bp.post("/<token_id>/revoke")
@admin_required
def revoke_token_post(token_id: str):  # type: ignore[no-untyped-def]
    """Revoke anyone's token."""
    revoke_pat(token_id, owner_id=None)
    return fragment_or_redirect("admin/_tokens_table.html", url_for("admin_tokens.list_tokens"), **tokens_data())

"""The home page."""

from __future__ import annotations

from flask import Blueprint, g

from agnes.access import login_required
from agnes.htmx import render

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    """What the signed-in user can do here, with admin shortcuts for admins."""
    return render("home.html", user=g.principal.user)

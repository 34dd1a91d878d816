"""Personal access tokens: create (shown once), list, revoke, with validation."""

from __future__ import annotations

from flask import current_app

from agnes import audit, signals
from agnes.errors import Invalid, NotFound
from agnes.models import tokens
from agnes.models.tokens import AccessToken
from agnes.state import state_store

# Longest token name (characters).
NAME_MAX = 100


def parse_expires_days(value: object) -> int | None:
    """``None``/``""``/``"never"``/``0`` → no expiry; else whole days within AGNES_PAT_MAX_DAYS.

    Raises Invalid (field ``expires_days``).
    """
    if value is None or value == "" or value == "never":
        return None
    try:
        days = int(str(value))
    except ValueError:
        raise Invalid("invalid_expiry", "expires_days must be a whole number of days.", field="expires_days") from None
    if days == 0:
        return None
    maximum = int(current_app.config["AGNES_PAT_MAX_DAYS"])
    if days < 0 or days > maximum:
        raise Invalid("invalid_expiry", f"expires_days must be between 1 and {maximum}.", field="expires_days")
    return days


def create_pat(user_id: str, name: str, expires_days: int | None) -> tuple[AccessToken, str]:
    """Create a token; returns ``(record, raw)``. The raw token is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise Invalid("name_required", "Give the token a name, e.g. 'laptop'.", field="name")
    if len(name) > NAME_MAX:
        raise Invalid("name_too_long", f"Token names are at most {NAME_MAX} characters.", field="name")
    with state_store().write() as con:
        record, raw = tokens.create_token(con, user_id, name, expires_days=expires_days)
        audit.record(
            con,
            "token.create",
            f"token:{record.id}",
            params_before={},  # metadata only: the token itself is never recorded
            name=record.name,
            expires_days=expires_days,
            expires_at=record.expires_at,
        )
    return record, raw


def list_pats(user_id: str | None) -> list[AccessToken]:
    with state_store().read() as con:
        return tokens.list_tokens(con, user_id=user_id)


def revoke_pat(token_id: str, *, owner_id: str | None, by_admin: bool = False) -> AccessToken:
    """Revoke a token; ``owner_id`` restricts to that user's tokens (None = any, for admins).
    ``by_admin``: an admin revokes it (audited as ``token.admin_revoke``) on the owner's page.

    Revoking an already revoked token is a no-op. Raises NotFound.
    """
    with state_store().write() as con:
        token = tokens.get_token(con, token_id)
        if token is None or (owner_id is not None and token.user_id != owner_id):
            raise NotFound("token_not_found", "No such token.")
        tokens.revoke_token(con, token_id)
        signals.credentials_changed.send(None, con=con, user_id=token.user_id)
        updated = tokens.get_token(con, token_id)
        assert updated is not None
        # Metadata only (name, expiry, revocation): the token itself is never recorded.
        before = {"name": token.name, "expires_at": token.expires_at, "revoked_at": token.revoked_at}
        after = {"name": updated.name, "expires_at": updated.expires_at, "revoked_at": updated.revoked_at}
        if owner_id is None or by_admin:
            audit.record(
                con, "token.admin_revoke", f"token:{token_id}", params_before=before, owner=token.user_email, **after
            )
        else:
            audit.record(con, "token.revoke", f"token:{token_id}", params_before=before, **after)
    return updated

"""Google Workspace groups mirrored as Agnes groups (docs/google-groups.md).

Agnes reads the Admin SDK Directory API as a service account with domain-wide delegation (acting
as ``AGNES_GOOGLE_DIRECTORY_SUBJECT``): the groups of one user at sign-in (:func:`sync_user`,
within a small time budget, failing soft) and every matching group with its members nightly and
on demand (:func:`sync_directory`, run by ``agnes.jobs.google_groups``). The service account's key
is a secret (environment or ``state/.env_overlay``), never stored in the database or logged.

What the directory says is applied by :mod:`agnes.people.workspace` as a diff, one
``membership_changed`` signal per change, so a removed member loses the group's plugins and
tables at once (including through tokens: ``agnes pull``, git).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import current_app

from agnes.models import utcnow
from agnes.people import workspace
from agnes.progress import Progress, no_progress
from agnes.secrets import read_secret

log = logging.getLogger(__name__)

# Read-only scope of the Directory API for groups and their members.
SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly"
KEY_SETTING = "AGNES_GOOGLE_SERVICE_ACCOUNT_KEY"
# Seconds a sign-in waits for the directory before going on without the sync.
SIGN_IN_BUDGET = 3.0
# Seconds one directory request may take in the nightly sync.
REQUEST_TIMEOUT = 30.0
# Results per directory page (the API's maximum).
PAGE_SIZE = 200


class DirectoryError(RuntimeError):
    """The directory could not be read; the message is safe to show (no key material)."""


@dataclass(frozen=True)
class WorkspaceGroup:
    email: str
    name: str


def enabled() -> bool:
    return bool(current_app.config.get("AGNES_GOOGLE_GROUPS"))


def _matches(email: str) -> bool:
    prefix = str(current_app.config.get("AGNES_GOOGLE_GROUP_PREFIX") or "").lower()
    admin = str(current_app.config.get("AGNES_GOOGLE_ADMIN_GROUP") or "").lower()
    return email == admin or email.startswith(prefix)


def _timed_request(timeout: float) -> Any:
    """google-auth's transport with our timeout (its default is 120 s)."""
    # google-auth and requests cost ~0.1 s to import: loaded by the group sync only, not by every process.
    import google.auth.transport.requests

    class _TimedRequest(google.auth.transport.requests.Request):
        def __call__(self, url: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any) -> Any:
            kwargs["timeout"] = timeout
            return super().__call__(url, method=method, body=body, headers=headers, **kwargs)

    return _TimedRequest()


class Directory:
    """A reader of the Directory API with one access token (fetched on first use).

    Args:
        deadline: ``time.monotonic()`` value after which requests are not started (a sign-in's
            budget); each request's timeout is the time left, at most :data:`REQUEST_TIMEOUT`.
    """

    def __init__(self, *, deadline: float | None = None) -> None:
        self.base = str(current_app.config["AGNES_GOOGLE_DIRECTORY_URL"]).rstrip("/")
        self.subject = str(current_app.config.get("AGNES_GOOGLE_DIRECTORY_SUBJECT") or "") or None
        self.customer = str(current_app.config.get("AGNES_GOOGLE_CUSTOMER") or "my_customer")
        self.deadline = deadline
        self._token: str | None = None

    def _timeout(self) -> float:
        if self.deadline is None:
            return REQUEST_TIMEOUT
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DirectoryError("the Google directory did not answer in time")
        return min(left, REQUEST_TIMEOUT)

    def _access_token(self) -> str:
        if self._token:
            return self._token
        # Loaded by the group sync only (see _timed_request).
        import google.auth.exceptions
        from google.oauth2 import service_account

        raw = read_secret(KEY_SETTING)
        if not raw:
            raise DirectoryError(f"no service account key: set {KEY_SETTING} (see docs/google-groups.md)")
        try:
            info = json.loads(raw)
            credentials = service_account.Credentials.from_service_account_info(
                info, scopes=[SCOPE], subject=self.subject
            )
        except (ValueError, KeyError, TypeError):
            raise DirectoryError(f"{KEY_SETTING} is not a service account JSON key") from None
        try:
            credentials.refresh(_timed_request(self._timeout()))
        except google.auth.exceptions.GoogleAuthError as exc:
            # The message names the failure (e.g. unauthorized_client), never the key.
            raise DirectoryError(f"Google refused the service account: {type(exc).__name__}") from None
        self._token = str(credentials.token)
        return self._token

    def _pages(self, path: str, params: dict[str, str], key: str) -> list[dict[str, Any]]:
        # httpx is loaded by the group sync only (see _timed_request).
        import httpx

        found: list[dict[str, Any]] = []
        page_token = ""
        while True:
            query = {**params, "maxResults": str(PAGE_SIZE), **({"pageToken": page_token} if page_token else {})}
            try:
                resp = httpx.get(
                    f"{self.base}{path}",
                    params=query,
                    headers={"Authorization": f"Bearer {self._access_token()}"},
                    timeout=self._timeout(),
                )
            except httpx.TimeoutException:
                raise DirectoryError("the Google directory did not answer in time") from None
            except httpx.HTTPError as exc:
                raise DirectoryError(f"the Google directory could not be reached: {type(exc).__name__}") from None
            if resp.status_code != 200:
                raise DirectoryError(f"the Google directory answered {resp.status_code} for {path.split('?')[0]}")
            try:
                body = resp.json()
            except ValueError:
                raise DirectoryError("the Google directory answered with something that is not JSON") from None
            found.extend(x for x in body.get(key) or [] if isinstance(x, dict))
            page_token = str(body.get("nextPageToken") or "")
            if not page_token:
                return found

    def user_groups(self, email: str) -> list[WorkspaceGroup]:
        """The Workspace groups ``email`` is a direct member of."""
        return _groups(self._pages("/groups", {"userKey": email}, "groups"))

    def all_groups(self) -> list[WorkspaceGroup]:
        return _groups(self._pages("/groups", {"customer": self.customer}, "groups"))

    def members(self, group_email: str) -> list[str]:
        """Emails of the people in a group (nested groups resolved by the directory)."""
        rows = self._pages(
            f"/groups/{quote(group_email, safe='')}/members", {"includeDerivedMembership": "true"}, "members"
        )
        return sorted({str(m["email"]).lower() for m in rows if m.get("type", "USER") == "USER" and m.get("email")})


def _groups(rows: list[dict[str, Any]]) -> list[WorkspaceGroup]:
    found = {}
    for row in rows:
        email = str(row.get("email") or "").strip().lower()
        if email and _matches(email):
            found[email] = WorkspaceGroup(email, str(row.get("name") or email.split("@")[0]).strip() or email)
    return sorted(found.values(), key=lambda g: g.email)


def _admin_group() -> str:
    return str(current_app.config.get("AGNES_GOOGLE_ADMIN_GROUP") or "").strip().lower()


def sync_user(user_id: str, email: str, *, budget: float | None = None) -> workspace.SyncOutcome:
    """Mirror one user's Workspace groups (at sign-in and "refresh my groups" on ``/me``).

    Fails soft: a directory error (or no answer within ``budget`` seconds, :data:`SIGN_IN_BUDGET`
    by default) keeps the user's rows, is recorded (``google_sync_runs``) and returned as the
    outcome's ``error``. A successful empty answer removes their Google rows.
    """
    started = utcnow()
    try:
        found = Directory(deadline=time.monotonic() + (budget or SIGN_IN_BUDGET)).user_groups(email)
    except DirectoryError as exc:
        log.warning("Google group sync for %s failed: %s", email, exc)
        return workspace.record_failure(scope="user", user_id=user_id, started_at=started, error=str(exc))
    return workspace.apply_user_groups(
        user_id, {g.email: g.name for g in found}, admin_group=_admin_group(), started_at=started
    )


def sync_directory(*, progress: Progress = no_progress) -> workspace.SyncOutcome:
    """Mirror every matching Workspace group and its members (nightly, "Sync now").

    Raises:
        DirectoryError: the directory could not be read (recorded first; no row changed).
    """
    started = utcnow()
    directory = Directory()
    try:
        found = directory.all_groups()
        pairs: set[tuple[str, str]] = set()
        for index, group in enumerate(found):
            progress(index, len(found), f"Reading members of {group.email}")
            pairs.update((member, group.email) for member in directory.members(group.email))
    except DirectoryError as exc:
        workspace.record_failure(scope="all", user_id=None, started_at=started, error=str(exc))
        raise
    progress(len(found), len(found), "Applying changes")
    max_pct = int(current_app.config.get("AGNES_GOOGLE_SYNC_MAX_REMOVAL_PCT", 25))
    return workspace.apply_directory(
        {g.email: g.name for g in found}, pairs, admin_group=_admin_group(), started_at=started, max_removal_pct=max_pct
    )

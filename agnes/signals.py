"""Domain events other features subscribe to (blinker signals, as Flask uses).

Receivers are called synchronously inside the write unit that caused the event, with the
cursor as ``con``, so their changes commit or roll back together with it.

* ``user_created``: kwargs ``con``, ``user_id``.
* ``group_created``: kwargs ``con``, ``group_id``.
* ``grant_revoked``: kwargs ``con``, ``group_id``, ``resource_type``, ``resource_id`` (one) or
  ``resource_ids`` (a list, when many of one type go at once), and ``cascade=True`` when the grant
  goes because its group is deleted. A receiver may raise an ``AppError`` to refuse a direct
  revocation (the unit rolls back).
* ``grant_created``: kwargs ``con``, ``group_id``, ``resource_type``, ``resource_id`` or
  ``resource_ids`` (as for ``grant_revoked``).
* ``membership_changed``: kwargs ``con``, ``user_id``, ``group_id`` (after add or remove).
* ``credentials_changed``: kwargs ``con``, ``user_id`` (a token was revoked or the user was
  deactivated; caches of authenticated callers must forget them).
* ``session_removed``: kwargs ``con``, ``user_id``, ``session_id`` (a session was marked private:
  its files and telemetry rows are gone; areas that derived rows from it delete theirs).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

user_created = _signals.signal("user-created")
group_created = _signals.signal("group-created")
grant_created = _signals.signal("grant-created")
grant_revoked = _signals.signal("grant-revoked")
membership_changed = _signals.signal("membership-changed")
credentials_changed = _signals.signal("credentials-changed")
session_removed = _signals.signal("session-removed")

"""Operations on users, groups, memberships and grants, with the guards users expect.

Each function is one unit of work on the state store, writes its audit row in that unit, sends the
signals other areas listen to (so caches and served marketplaces follow at once) and raises
:class:`agnes.errors.AppError` subclasses with the status, code and message a client sees. Views,
the JSON API, jobs and the CLI call these, never the models directly, so they all enforce the
same rules. Submodules: :mod:`.accounts` (users), :mod:`.membership` (groups, members),
:mod:`.granting` (grants), :mod:`.workspace` (Google Workspace group sync's writes).
"""

from agnes.people.accounts import (
    EMAIL_RE,
    USERS_PER_PAGE,
    UserRow,
    UsersPage,
    create_user,
    effective_access,
    ensure_seed_admin,
    get_or_create_user,
    list_users,
    resolve_user,
    revoke_all_tokens,
    set_user_active,
    update_user,
    user_groups,
    validate_email,
)
from agnes.people.granting import create_grant, delete_grant, find_grant, list_grants, set_grants
from agnes.people.membership import (
    GROUP_NAME_MAX,
    MEMBERS_SHOWN,
    GroupDetail,
    add_member,
    add_membership,
    create_group,
    delete_group,
    get_group,
    group_detail,
    list_groups,
    list_members,
    memberships,
    remove_member,
    resolve_group,
    update_group,
)

__all__ = [
    "EMAIL_RE",
    "GROUP_NAME_MAX",
    "MEMBERS_SHOWN",
    "USERS_PER_PAGE",
    "GroupDetail",
    "UserRow",
    "UsersPage",
    "add_member",
    "add_membership",
    "create_grant",
    "create_group",
    "create_user",
    "delete_grant",
    "delete_group",
    "effective_access",
    "find_grant",
    "ensure_seed_admin",
    "get_group",
    "get_or_create_user",
    "group_detail",
    "list_grants",
    "list_groups",
    "list_members",
    "list_users",
    "memberships",
    "remove_member",
    "resolve_group",
    "resolve_user",
    "revoke_all_tokens",
    "set_grants",
    "set_user_active",
    "update_group",
    "update_user",
    "user_groups",
    "validate_email",
]

"""Grants of resources to groups: one, many at once (a block of the access page), revoke."""

from __future__ import annotations

import duckdb

from agnes import audit, signals
from agnes.access import ResourceType, parse_resource_type, validate_resource_id
from agnes.errors import Conflict, NotFound
from agnes.models import grants, groups
from agnes.models.grants import Grant
from agnes.state import state_store


def list_grants(*, resource_type: str | None = None, group_id: str | None = None) -> list[Grant]:
    if resource_type:
        parse_resource_type(resource_type)
    with state_store().read() as con:
        return grants.list_grants(con, resource_type=resource_type, group_id=group_id)


def create_grant(group_ref: str, resource_type: str, resource_id: str, *, actor_id: str | None) -> Grant:
    """Grant a resource to a group. Raises Invalid, NotFound (group), Conflict (exists)."""
    rtype = parse_resource_type(resource_type)
    resource_id = validate_resource_id(rtype, resource_id)
    with state_store().write() as con:
        group = groups.get_group(con, group_ref) or groups.get_group_by_name(con, group_ref)
        if group is None:
            raise NotFound("group_not_found", f"No group '{group_ref}'.")
        try:  # the unique constraint answers "exists" (the unit rolls back with the Conflict)
            grant = grants.create_grant(con, group.id, rtype, resource_id, assigned_by=actor_id)
        except duckdb.ConstraintException:
            raise Conflict("grant_exists", f"{group.name} already has {rtype.value} '{resource_id}'.") from None
        signals.grant_created.send(None, con=con, group_id=group.id, resource_type=rtype, resource_id=resource_id)
        audit.record(
            con,
            "grant.create",
            f"grant:{grant.id}",
            params_before={},
            group_id=group.id,
            resource_type=rtype,
            resource_id=resource_id,
        )
    return grant


def delete_grant(grant_id: str) -> Grant:
    with state_store().write() as con:
        grant = grants.get_grant(con, grant_id)
        if grant is None:
            raise NotFound("grant_not_found", "No such grant.")
        grants.delete_grant(con, grant_id)
        signals.grant_revoked.send(
            None,
            con=con,
            group_id=grant.group_id,
            resource_type=ResourceType(grant.resource_type),
            resource_id=grant.resource_id,
        )
        audit.record(
            con,
            "grant.delete",
            f"grant:{grant_id}",
            params_before={
                "group_id": grant.group_id,
                "resource_type": grant.resource_type,
                "resource_id": grant.resource_id,
            },
            group_id=grant.group_id,
            resource_type=grant.resource_type,
            resource_id=grant.resource_id,
        )
    return grant


def set_grants(
    group_id: str, resource_type: str, resource_ids: list[str], *, granted: bool, actor_id: str | None
) -> list[str]:
    """Grant (or revoke) many resources of one type to (from) a group in one unit: "grant all" and
    "revoke all" of a block on the access page. Ids the group already has (or lacks) are left
    alone. Returns the ids that changed.

    Raises:
        Invalid: unknown type, a malformed id. NotFound: the group. Conflict: a revoke that
        includes a system plugin (``cannot_revoke_system_grant``; nothing is revoked).
    """
    rtype = parse_resource_type(resource_type)
    ids = sorted({validate_resource_id(rtype, rid) for rid in resource_ids})
    with state_store().write() as con:
        group = groups.get_group(con, group_id)
        if group is None:
            raise NotFound("group_not_found", "No such group.")
        if granted:
            changed = grants.create_grants(con, group_id, rtype, ids, assigned_by=actor_id)
            signal = signals.grant_created
        else:
            changed = grants.delete_grants(con, group_id, rtype, ids)
            signal = signals.grant_revoked
        if changed:
            signal.send(None, con=con, group_id=group_id, resource_type=rtype, resource_ids=changed)
        audit.record(
            con,
            "grant.bulk_create" if granted else "grant.bulk_delete",
            f"group:{group_id}",
            # Granting: the ids were not granted before; revoking: they were.
            params_before={} if granted else {"resource_type": rtype, "resource_ids": changed},
            resource_type=rtype,
            resource_ids=changed,
            count=len(changed),
        )
    return changed


def get_grant(grant_id: str) -> Grant:
    """Raises NotFound (``grant_not_found``)."""
    with state_store().read() as con:
        grant = grants.get_grant(con, grant_id)
    if grant is None:
        raise NotFound("grant_not_found", "No such grant.")
    return grant


def find_grant(group_id: str, resource_type: str, resource_id: str) -> Grant | None:
    """The grant of one resource to one group, if any."""
    with state_store().read() as con:
        return grants.find_grant(con, group_id, resource_type, resource_id)

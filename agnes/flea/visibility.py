"""Who may see a flea-market entity and which of its versions (the ``flea_entity`` resource type).

* Administrators and the owner see the entity and every version.
* Everyone else sees an **active** entity that has a served (approved) version, and only that
  version's files; an archived one only if they installed it (it keeps being served to them).

Who may not see an entity gets 404 everywhere (detail, files, versions, install, downloads):
its existence is not revealed. Unreviewed bytes reach nobody but the owner and administrators.
"""

from __future__ import annotations

from agnes import markers
from agnes.access import Principal
from agnes.errors import NotFound
from agnes.models import flea as model
from agnes.models.flea import Entity, Version
from agnes.state import state_store

ID_PATTERN = r"[0-9a-f]{16}"


def not_found(entity_id: str) -> NotFound:
    return NotFound("entity_not_found", f"There is no flea-market entry '{entity_id}'.")


def is_granted(principal: Principal, entity_id: str) -> bool:
    """The caller may see the entity (owner, or served to everyone; admins pass in access.can_access)."""
    with state_store().read() as con:
        return model.is_visible(con, entity_id, principal.user.id, principal.is_admin)


def visible_entity(principal: Principal, entity_id: str) -> Entity:
    """The entity, when the caller may see it.

    Raises:
        NotFound: 404 ``entity_not_found`` (missing, or hidden from the caller).
    """
    with state_store().read() as con:
        if not model.is_visible(con, entity_id, principal.user.id, principal.is_admin):
            raise not_found(entity_id)
        entity = model.get_entity(con, entity_id)
    if entity is None:
        raise not_found(entity_id)
    return entity


def sees_all_versions(principal: Principal, entity: Entity) -> bool:
    return principal.is_admin or principal.user.id == entity.owner_id


def can_see_version(principal: Principal, entity: Entity, version: Version) -> bool:
    """Owner and admins see every version; others only the served, approved one."""
    if sees_all_versions(principal, entity):
        return True
    return version.status == "approved" and version.number == entity.served_version


def visible_version(principal: Principal, entity: Entity, number: int) -> Version:
    """Raises NotFound (404 ``version_not_found``) when missing or hidden from the caller."""
    with state_store().read() as con:
        version = model.get_version_number(con, entity.id, number)
    if version is None or not can_see_version(principal, entity, version):
        raise NotFound("version_not_found", f"'{entity.name}' has no version {number}.")
    return version


def changed(*, served: bool) -> None:
    """Inside a write unit: the flea listing changed (and, with ``served``, what installers are
    served: the served-marketplace caches too)."""
    markers.FLEA.bump()
    if served:
        markers.MARKETPLACE.bump()

"""Annotated dependency aliases of the registry routes, and the permissions they declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.common.auth import Role
from services.common.deps import (
    AuditDep,
    Authorize,
    DatabaseDep,
    IfMatchDep,
    OutboxDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    scoped_loader,
)
from services.registry.certification import repository as certification_repo
from services.registry.certification.models import Auditor, CertificationBody
from services.registry.subjects import repository as subjects_repo
from services.registry.subjects.models import Enterprise, Product

# Manages the bureau network (bureaus, posts, officers, pilot designations) within the principal's subtree.
NetworkAdmin = Authorize(Role.ADMIN)
# Records and corrects inspections (监督检查): the certification supervision body, or an administrator.
InspectionWriter = Authorize(Role.SUPERVISION, Role.ADMIN)

# Writes the registry of certified subjects (certification bodies, auditors, enterprises,
# products, certificates, activities): the supervision body, an administrator, or a
# provincial information system. Where — the record's bureau in the principal's subtree —
# is checked on the record itself (404 outside, see ``scope.py``).
REGISTRY_WRITER_ROLES = (Role.SUPERVISION, Role.ADMIN, Role.SYSTEM)
RegistryWriter = Authorize(*REGISTRY_WRITER_ROLES)

__all__ = [
    "REGISTRY_WRITER_ROLES",
    "AuditDep",
    "AuditorToWrite",
    "BodyToWrite",
    "DatabaseDep",
    "EnterpriseToMerge",
    "EnterpriseToWrite",
    "IfMatchDep",
    "InspectionWriter",
    "NetworkAdmin",
    "OutboxDep",
    "PrincipalDep",
    "ProductToWrite",
    "ReadSessionDep",
    "RegistryWriter",
    "SessionDep",
    "writable_record",
]


def writable_record(fetch, *, noun: str, param: str):
    """A loader of the record a write route's path names: the writer's role first (403),
    then the record, missing or outside the writer's subtree alike a 404. ``fetch`` may lock
    the row for the update that follows."""
    return Depends(scoped_loader(fetch, noun=noun, param=param, roles=REGISTRY_WRITER_ROLES))


async def _lock_body(session, body_id: int):
    return await certification_repo.get_body(session, body_id, for_update=True)


async def _lock_auditor(session, auditor_id: int):
    return await certification_repo.get_auditor(session, auditor_id, for_update=True)


async def _lock_enterprise(session, enterprise_id: int):
    return await subjects_repo.get_enterprise(session, enterprise_id, for_update=True)


async def _lock_product(session, product_id: int):
    return await subjects_repo.get_product(session, product_id, for_update=True)


BodyToWrite = Annotated[
    CertificationBody, writable_record(_lock_body, noun="certification body", param="body_id")
]
# Locked: an auditor's affiliations change one request at a time.
AuditorToWrite = Annotated[Auditor, writable_record(_lock_auditor, noun="auditor", param="auditor_id")]
EnterpriseToWrite = Annotated[
    Enterprise, writable_record(_lock_enterprise, noun="enterprise", param="enterprise_id")
]
# Not locked here: a merge locks both records itself, in id order.
EnterpriseToMerge = Annotated[
    Enterprise, writable_record(subjects_repo.get_enterprise, noun="enterprise", param="enterprise_id")
]
ProductToWrite = Annotated[Product, writable_record(_lock_product, noun="product", param="product_id")]

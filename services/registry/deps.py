"""Annotated dependency aliases of the registry routes, and the permissions they declare."""

from __future__ import annotations

from services.common.auth import Role
from services.common.deps import AuditDep, Authorize, IfMatchDep, PrincipalDep, ReadSessionDep, SessionDep

# Manages the bureau network (bureaus, posts, officers) within the principal's subtree.
NetworkAdmin = Authorize(Role.ADMIN)

# Writes the registry of certified subjects (certification bodies, auditors, enterprises,
# products, certificates, activities): the supervision body, an administrator, or a
# provincial information system. Where — the record's bureau in the principal's subtree —
# is checked on the record itself (404 outside, see ``scope.py``).
REGISTRY_WRITER_ROLES = (Role.SUPERVISION, Role.ADMIN, Role.SYSTEM)
RegistryWriter = Authorize(*REGISTRY_WRITER_ROLES)

__all__ = [
    "REGISTRY_WRITER_ROLES",
    "AuditDep",
    "IfMatchDep",
    "NetworkAdmin",
    "PrincipalDep",
    "ReadSessionDep",
    "RegistryWriter",
    "SessionDep",
]

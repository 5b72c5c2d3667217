"""Annotated dependency aliases of the registry routes, and the permissions they declare."""

from __future__ import annotations

from services.common.auth import Role
from services.common.deps import (
    AuditDep,
    Authorize,
    IfMatchDep,
    OutboxDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
)

# Manages the bureau network (bureaus, posts, officers) within the principal's subtree.
NetworkAdmin = Authorize(Role.ADMIN)

# Who writes the registry of certified subjects (certificates, bodies, auditors, enterprises,
# products): the supervision body, an administrator, or a provincial system — each only
# within its scope, which the object's loader checks (404 outside).
REGISTRY_WRITER_ROLES = (Role.SUPERVISION, Role.ADMIN, Role.SYSTEM)
RegistryWriter = Authorize(*REGISTRY_WRITER_ROLES)

__all__ = [
    "REGISTRY_WRITER_ROLES",
    "AuditDep",
    "IfMatchDep",
    "NetworkAdmin",
    "OutboxDep",
    "PrincipalDep",
    "ReadSessionDep",
    "RegistryWriter",
    "SessionDep",
]

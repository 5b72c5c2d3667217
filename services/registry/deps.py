"""Annotated dependency aliases of the registry routes."""

from __future__ import annotations

from typing import Annotated

from services.common.auth import Principal, Role
from services.common.deps import (
    AuditDep,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    require_roles,
)

# Who writes the registry of certified subjects (certificates, bodies, auditors, enterprises,
# products): the supervision body, an administrator, or a provincial system — each only
# within its scope, which the service checks on the object (404 outside).
RegistryWriter = Annotated[Principal, require_roles(Role.SUPERVISION, Role.ADMIN, Role.SYSTEM)]

__all__ = ["AuditDep", "IfMatchDep", "PrincipalDep", "ReadSessionDep", "RegistryWriter", "SessionDep"]

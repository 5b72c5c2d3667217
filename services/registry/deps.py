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

# Who may write the registry of certified subjects (bodies, auditors, enterprises,
# products, certificates, activities): the supervision body, an administrator, or a
# provincial information system. Where — the object's bureau in the principal's
# subtree — is checked on the object itself (404 outside, see ``scope.py``).
REGISTRY_WRITER_ROLES = (Role.SUPERVISION, Role.ADMIN, Role.SYSTEM)
RegistryWriter = Annotated[Principal, require_roles(*REGISTRY_WRITER_ROLES)]

__all__ = [
    "REGISTRY_WRITER_ROLES",
    "AuditDep",
    "IfMatchDep",
    "PrincipalDep",
    "ReadSessionDep",
    "RegistryWriter",
    "SessionDep",
]

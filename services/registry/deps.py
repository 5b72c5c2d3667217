"""Annotated dependency aliases of the registry routes, and its permission dependencies."""

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

# Administrators of the bureau network (within their scope, which the service checks on the object).
NetworkAdmin = Annotated[Principal, require_roles(Role.ADMIN)]
# Who records and corrects inspections (监督检查): the certification supervision body, or an administrator.
InspectionWriter = Annotated[Principal, require_roles(Role.SUPERVISION, Role.ADMIN)]

__all__ = [
    "AuditDep",
    "IfMatchDep",
    "InspectionWriter",
    "NetworkAdmin",
    "PrincipalDep",
    "ReadSessionDep",
    "SessionDep",
]

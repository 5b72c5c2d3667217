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

# Manages the bureau network (bureaus, posts, officers, pilot designations) within the principal's subtree.
NetworkAdmin = Authorize(Role.ADMIN)
# Records and corrects inspections (监督检查): the certification supervision body, or an administrator.
InspectionWriter = Authorize(Role.SUPERVISION, Role.ADMIN)

__all__ = [
    "AuditDep",
    "IfMatchDep",
    "InspectionWriter",
    "NetworkAdmin",
    "OutboxDep",
    "PrincipalDep",
    "ReadSessionDep",
    "SessionDep",
]

"""Annotated dependency aliases of the registry routes, and the permissions they declare."""

from __future__ import annotations

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
)

# Manages the bureau network (bureaus, posts, officers) within the principal's subtree.
NetworkAdmin = Authorize(Role.ADMIN)

__all__ = [
    "AuditDep",
    "DatabaseDep",
    "IfMatchDep",
    "NetworkAdmin",
    "OutboxDep",
    "PrincipalDep",
    "ReadSessionDep",
    "SessionDep",
]

"""Annotated dependency aliases of the statistics routes, and the permissions they declare."""

from __future__ import annotations

from services.common.deps import (
    AuditDep,
    Authorize,
    DatabaseDep,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    scoped_loader,
)

__all__ = [
    "AuditDep",
    "Authorize",
    "DatabaseDep",
    "IfMatchDep",
    "PrincipalDep",
    "ReadSessionDep",
    "SessionDep",
    "scoped_loader",
]

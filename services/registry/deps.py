"""Annotated dependency aliases of the registry routes."""

from __future__ import annotations

from services.common.deps import (
    AuditDep,
    DatabaseDep,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
)

__all__ = ["AuditDep", "DatabaseDep", "IfMatchDep", "PrincipalDep", "ReadSessionDep", "SessionDep"]

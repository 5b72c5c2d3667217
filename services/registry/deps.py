"""Annotated dependency aliases of the registry routes."""

from __future__ import annotations

from services.common.deps import AuditDep, IfMatchDep, OutboxDep, PrincipalDep, ReadSessionDep, SessionDep

__all__ = ["AuditDep", "IfMatchDep", "OutboxDep", "PrincipalDep", "ReadSessionDep", "SessionDep"]

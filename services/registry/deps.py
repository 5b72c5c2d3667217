"""Annotated dependency aliases of the registry routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from services.common.audit import AuditLog
from services.common.deps import PrincipalDep, ReadSessionDep, SessionDep


async def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


AuditDep = Annotated[AuditLog, Depends(get_audit)]
IfMatchDep = Annotated[str | None, Header(description="The ETag the update is based on")]

__all__ = ["AuditDep", "IfMatchDep", "PrincipalDep", "ReadSessionDep", "SessionDep"]

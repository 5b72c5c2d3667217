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

# Who writes the registry of certified subjects (within its scope): the supervision body,
# an administrator, or a provincial information system.
WRITER_ROLES = (Role.SUPERVISION, Role.ADMIN, Role.SYSTEM)
WriterDep = Annotated[Principal, require_roles(*WRITER_ROLES)]

__all__ = ["AuditDep", "IfMatchDep", "PrincipalDep", "ReadSessionDep", "SessionDep", "WriterDep"]

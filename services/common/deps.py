"""Dependencies every service uses: the request's session and principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.db import Database
from services.common.problems import Forbidden


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads only: no BEGIN / ROLLBACK around its statements."""
    async with request.app.state.read_sessionmaker() as session:
        yield session


async def get_database(request: Request) -> Database:
    """Hot reads on the driver connection (no session): see ``services.common.db.Database``."""
    return request.app.state.database


# Async, like every dependency here: a plain `def` would cost a thread hand-off per request.
async def get_principal(request: Request) -> Principal:
    """The principal of the bearer token, checked by the app's ``authorize`` (401 otherwise)."""
    return request.app.state.authorize(request.headers.get("authorization"))


async def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
DatabaseDep = Annotated[Database, Depends(get_database)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
IfMatchDep = Annotated[str | None, Header(description="The ETag the update is based on")]


def require_roles(*roles: str):
    """A dependency that lets through only principals holding one of ``roles``."""

    async def check(principal: PrincipalDep) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.", slug="role-required")
        return principal

    return Depends(check)


def require_national_roles(*roles: str):
    """Only principals of the national regulator holding one of ``roles``."""

    async def check(principal: PrincipalDep) -> Principal:
        if not (principal.is_national and principal.has_role(*roles)):
            raise Forbidden(
                f"This needs one of the roles {', '.join(roles)} at the national regulator.",
                slug="role-required",
            )
        return principal

    return Depends(check)

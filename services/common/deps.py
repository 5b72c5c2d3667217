"""Dependencies every service uses: the request's session and principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.problems import Forbidden


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


def get_principal(request: Request) -> Principal:
    return request.app.state.verifier.verify_authorization(request.headers.get("authorization"))


SessionDep = Annotated[AsyncSession, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str):
    """A dependency that lets through only principals holding one of ``roles``."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.", slug="role-required")
        return principal

    return Depends(check)

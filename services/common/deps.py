"""Dependencies every service uses: the request's session and principal, role checks,
and loaders that answer 404 for what is missing or outside the principal's scope."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from operator import attrgetter
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.concurrency import ETAG_HEADER_MAX_LENGTH
from services.common.db import Database
from services.common.outbox import Outbox
from services.common.problems import Forbidden, NotFound
from services.common.types import IdPath

T = TypeVar("T")


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


async def get_outbox(request: Request) -> Outbox:
    return request.app.state.outbox


SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session)]
DatabaseDep = Annotated[Database, Depends(get_database)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
IfMatchDep = Annotated[
    str | None,
    Header(description="The ETag the update is based on", max_length=ETAG_HEADER_MAX_LENGTH),
]


def check_roles(principal: Principal, roles: tuple[str, ...]) -> None:
    if not principal.has_role(*roles):
        raise Forbidden(f"This needs one of the roles: {', '.join(roles)}.", slug="role-required")


def require_roles(*roles: str):
    """A dependency that lets through only principals holding one of ``roles``."""

    async def check(principal: PrincipalDep) -> Principal:
        check_roles(principal, roles)
        return principal

    check.problem_statuses = (403,)  # type: ignore[attr-defined]  # for the OpenAPI document
    return Depends(check)


def Authorize(*roles: str) -> Any:  # capitalised: it is used as a type
    """The principal, refused with 403 ``role-required`` unless it holds one of ``roles``.

    ``AdminDep = Authorize(Role.ADMIN)`` then ``async def route(principal: AdminDep)``.
    """
    return Annotated[Principal, require_roles(*roles)]


def scoped_loader(
    fetch: Callable[[AsyncSession, Any], Awaitable[T | None]],
    *,
    noun: str,
    bureau_path: Callable[[T], str] = attrgetter("bureau_path"),
    param: str | None = None,
    id_type: Any = IdPath,
    roles: tuple[str, ...] = (),
    read_only: bool = False,
) -> Callable[..., Awaitable[T]]:
    """A dependency loading the object a route's path names, for the principal.

    ``fetch(session, id)`` returns the object or None; ``bureau_path(obj)`` the
    path of the bureau it belongs to. Missing and out of scope answer the same
    404 ``not-found``, so a principal cannot tell one from the other. The path
    parameter is ``param`` (default: ``<noun>_id``); the session is the
    request's own (the read session when ``read_only``), so the route works on
    the very object loaded. With ``roles``, a principal holding none of them is
    refused (403) before anything is read.

    ``CaseDep = Annotated[Case, Depends(scoped_loader(repo.get_case, noun="case"))]``
    """
    name = param or f"{noun.replace(' ', '_').replace('-', '_')}_id"
    label = noun[:1].upper() + noun[1:]

    async def load(**kwargs: Any) -> T:
        principal: Principal = kwargs["principal"]
        if roles:
            check_roles(principal, roles)
        object_id = kwargs[name]
        found = await fetch(kwargs["session"], object_id)
        if found is None or not principal.in_scope(bureau_path(found)):
            raise NotFound(f"{label} {object_id} not found.")
        return found

    # FastAPI reads the dependency's parameters from its signature: name the path parameter.
    load.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=id_type),
            inspect.Parameter(
                "session",
                inspect.Parameter.KEYWORD_ONLY,
                annotation=ReadSessionDep if read_only else SessionDep,
            ),
            inspect.Parameter("principal", inspect.Parameter.KEYWORD_ONLY, annotation=PrincipalDep),
        ]
    )
    load.__name__ = f"load_{name.removesuffix('_id')}"
    load.problem_statuses = (403, 404) if roles else (404,)  # type: ignore[attr-defined]
    return load


def require_national_roles(*roles: str):
    """Only principals of the national regulator holding one of ``roles``."""

    async def check(principal: PrincipalDep) -> Principal:
        if not (principal.is_national and principal.has_role(*roles)):
            raise Forbidden(
                f"This needs one of the roles {', '.join(roles)} at the national regulator.",
                slug="role-required",
            )
        return principal

    check.problem_statuses = (403,)  # type: ignore[attr-defined]
    return Depends(check)

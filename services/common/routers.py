"""Endpoints every service (and the gateway) carries: the caller's principal and the audit check."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from services.common.audit import ChainReport
from services.common.auth import Role
from services.common.deps import PrincipalDep, SessionDep, require_national_roles
from services.common.problems import problem_responses


class PrincipalRead(BaseModel):
    account_id: str
    kind: str
    bureau_id: int
    bureau_path: str
    roles: list[str]
    body: str | None
    officer_id: int | None


def principal_router(service: str) -> APIRouter:
    """``GET /api/v1/<service>/me``: the principal this service sees in the caller's token."""
    router = APIRouter(prefix=f"/api/v1/{service}", tags=["principal"])

    @router.get(
        "/me",
        response_model=PrincipalRead,
        summary="The principal of the presented token",
        # Every service has this route: the id names the service so the merged document stays unique.
        operation_id=f"{service}_me",
        responses=problem_responses(),
    )
    async def me(principal: PrincipalDep) -> PrincipalRead:
        return PrincipalRead(
            account_id=principal.account_id,
            kind=principal.kind,
            bureau_id=principal.bureau_id,
            bureau_path=principal.bureau_path,
            roles=sorted(principal.roles),
            body=principal.body,
            officer_id=principal.officer_id,
        )

    return router


def audit_router(service: str) -> APIRouter:
    """``GET /api/v1/<service>/audit/verify``: recompute the chain.

    The whole service's log size and head hash: for the national regulator's
    administrators and legal-affairs officers, not for every bureau's.
    """
    router = APIRouter(prefix=f"/api/v1/{service}/audit", tags=["audit"])

    @router.get(
        "/verify",
        response_model=ChainReport,
        summary="Verify the hash chain of this service's audit log",
        operation_id=f"verify_{service}_audit_chain",
        dependencies=[require_national_roles(Role.ADMIN, Role.LEGAL)],
        responses=problem_responses(403),
    )
    async def verify_audit_chain(request: Request, session: SessionDep) -> ChainReport:
        return await request.app.state.audit.verify(session)

    return router

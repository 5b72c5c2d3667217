"""Annotated dependency aliases of the enforcement routes, and the permissions they declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.common.auth import Role
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
from services.enforcement.cases import repository as cases_repo
from services.enforcement.cases.models import Case, Lead
from services.enforcement.registry import RegistryClient

__all__ = [
    "AuditDep",
    "CaseForUpdate",
    "CaseToRead",
    "DatabaseDep",
    "IfMatchDep",
    "LeadForUpdate",
    "LeadToRead",
    "LeadWriter",
    "PrincipalDep",
    "ReadSessionDep",
    "RegistryDep",
    "SessionDep",
]


async def get_registry(request: Request) -> RegistryClient:
    """The registry client of the app, over the app's service client (one per app)."""
    state = request.app.state
    if getattr(state, "registry", None) is None:
        state.registry = RegistryClient(state.services)
    return state.registry


RegistryDep = Annotated[RegistryClient, Depends(get_registry)]

# Registers leads (案件线索): the enforcement body, its head, the supervision body referring by hand,
# and provincial information systems syncing their leads.
LeadWriter = Authorize(Role.ENFORCEMENT, Role.HEAD, Role.SUPERVISION, Role.SYSTEM)
# Takes steps of a lead or a case: the roles each step needs are in the procedure's tables.
CASE_ROLES = (Role.ENFORCEMENT, Role.HEAD, Role.LEGAL)

LeadToRead = Annotated[Lead, Depends(scoped_loader(cases_repo.get_lead, noun="lead", read_only=True))]
LeadForUpdate = Annotated[Lead, Depends(scoped_loader(cases_repo.lock_lead, noun="lead", roles=CASE_ROLES))]
CaseToRead = Annotated[Case, Depends(scoped_loader(cases_repo.get_case, noun="case", read_only=True))]
CaseForUpdate = Annotated[Case, Depends(scoped_loader(cases_repo.lock_case, noun="case", roles=CASE_ROLES))]

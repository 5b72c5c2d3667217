"""Dossiers (档案) over HTTP: thin handlers that parse, authorize, call the service, respond.

Registry records are readable by every authenticated principal, and so are their dossiers;
the parts kept per bureau (inspections here, leads and cases at enforcement) are shown within
the caller's scope.
"""

from __future__ import annotations

from fastapi import APIRouter

from services.common.problems import problem_responses
from services.common.types import IdPath
from services.registry.deps import PrincipalDep, ReadSessionDep
from services.registry.dossiers import service
from services.registry.dossiers.enforcement import EnforcementChainsDep
from services.registry.dossiers.schemas import (
    AuditorDossier,
    BodyDossier,
    CertificateDossier,
    EnterpriseDossier,
)

PREFIX = "/api/v1/registry"
router = APIRouter(prefix=PREFIX, tags=["dossiers"])

_ENFORCEMENT = (
    "`enforcement` is the enforcement chain (执法链条) asked of the enforcement service with the "
    "caller's own credentials: the leads (案件线索) and cases (案件), with their decisions (处罚决定), "
    "of the caller's bureau and those under it; another bureau's are not shown. When enforcement "
    "cannot be reached in time the dossier is still answered, with `enforcement: null` and "
    "`enforcement_unavailable: true`. Inspections (监督检查) are likewise those of the caller's "
    "subtree. Linked lists show their first page; `next_cursor` continues on the list route named."
)


@router.get(
    "/certificates/{certificate_id}/dossier",
    response_model=CertificateDossier,
    summary="A certificate's dossier (证书档案): traceability (可追溯) from the certificate",
    description=(
        "The certificate (as `GET …/certificates/{id}` reads it), the certification body that issued "
        "it, the holder enterprise (证书持有人), the certified products, the status history and the "
        "inspections of it; the leads and cases concerning the certificate. Readable by every "
        "authenticated principal. " + _ENFORCEMENT
    ),
    responses=problem_responses(404),
)
async def get_certificate_dossier(
    session: ReadSessionDep, principal: PrincipalDep, chains: EnforcementChainsDep, certificate_id: IdPath
) -> CertificateDossier:
    return await service.certificate_dossier(session, principal, chains, certificate_id)


@router.get(
    "/enterprises/{enterprise_id}/dossier",
    response_model=EnterpriseDossier,
    summary="An enterprise's dossier (获证企业档案): traceability (可追溯) from the enterprise",
    description=(
        "The enterprise (as `GET …/enterprises/{id}` reads it, a merged record included), its "
        "products, its certificates (newest first) and the inspections of it. The enterprise is "
        "the party of cases concerning its certificates and products too: the enforcement chain is "
        "that of the enterprise and of the certificates and products on the pages shown. Readable by "
        "every authenticated principal. " + _ENFORCEMENT
    ),
    responses=problem_responses(404),
)
async def get_enterprise_dossier(
    session: ReadSessionDep, principal: PrincipalDep, chains: EnforcementChainsDep, enterprise_id: IdPath
) -> EnterpriseDossier:
    return await service.enterprise_dossier(session, principal, chains, enterprise_id)


@router.get(
    "/certification-bodies/{body_id}/dossier",
    response_model=BodyDossier,
    summary="A certification body's dossier (认证机构档案): traceability (可追溯) from the body",
    description=(
        "The certification body (认证机构, as `GET …/certification-bodies/{id}` reads it), the "
        "auditors practising in it now, the certificates it issued (newest first) and the "
        "inspections of it; the leads and cases concerning the body. Readable by every "
        "authenticated principal. " + _ENFORCEMENT
    ),
    responses=problem_responses(404),
)
async def get_body_dossier(
    session: ReadSessionDep, principal: PrincipalDep, chains: EnforcementChainsDep, body_id: IdPath
) -> BodyDossier:
    return await service.body_dossier(session, principal, chains, body_id)


@router.get(
    "/auditors/{auditor_id}/dossier",
    response_model=AuditorDossier,
    summary="An auditor's dossier (认证人员档案): traceability (可追溯) from the auditor",
    description=(
        "The auditor (认证人员, as `GET …/auditors/{id}` reads it), the bodies practised in "
        "(affiliations, oldest first) and the inspections of the auditor; the leads and cases "
        "concerning the auditor. Readable by every authenticated principal. " + _ENFORCEMENT
    ),
    responses=problem_responses(404),
)
async def get_auditor_dossier(
    session: ReadSessionDep, principal: PrincipalDep, chains: EnforcementChainsDep, auditor_id: IdPath
) -> AuditorDossier:
    return await service.auditor_dossier(session, principal, chains, auditor_id)

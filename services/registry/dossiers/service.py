"""Dossiers (档案) for traceability (可追溯): a registry record, its links in the certification
chain, and the enforcement chain of leads, cases and decisions concerning it.

The registry part is read through the services the item and list routes use (the same read
models, the same first page a list would answer, so its ``next_cursor`` continues on the
list route); inspections are shown within the caller's subtree, as the inspection list shows
them. The enforcement part is asked of the enforcement service with the caller's scope.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.auth import Principal
from services.common.pagination import Page
from services.registry.certification import service as certification
from services.registry.certification.certificates import service as certificates
from services.registry.certification.certificates.repository import CertificateFilters
from services.registry.dossiers.enforcement import EnforcementChains
from services.registry.dossiers.schemas import (
    AuditorDossier,
    BodyDossier,
    CertificateDossier,
    ChainSubject,
    EnterpriseDossier,
    SubjectType,
)
from services.registry.inspections import service as inspections
from services.registry.inspections.models import InspectionTarget
from services.registry.inspections.schemas import InspectionRead
from services.registry.subjects import service as subjects

# Linked records shown per list; the rest is on the list routes, from the page's next_cursor.
LINKS_PER_PAGE = 20


def _subject(subject_type: SubjectType, subject_id: int) -> ChainSubject:
    return ChainSubject(subject_type=subject_type, subject_id=subject_id)


def _page(result: tuple[list, str | None]) -> Page:
    items, next_cursor = result
    return Page(items=items, next_cursor=next_cursor)


async def _inspections_of(
    session: AsyncSession, principal: Principal, target: InspectionTarget, target_id: int
) -> Page[InspectionRead]:
    filters = {"target_type": target, "target_id": target_id}
    return _page(
        await inspections.list_inspections(session, principal, filters, None, None, None, LINKS_PER_PAGE)
    )


async def _enforcement(
    session: AsyncSession, chains: EnforcementChains, *asked: ChainSubject
) -> dict[str, Any]:
    """The dossier's enforcement members: the chain, or null and the flag saying it is missing.

    Asked once the registry part is read: the session's connection goes back to the pool first,
    so dossiers waiting on a slow enforcement service do not hold the registry's connections."""
    await session.close()
    chain = await chains.of(asked)
    return {"enforcement": chain, "enforcement_unavailable": chain is None}


async def certificate_dossier(
    session: AsyncSession, principal: Principal, chains: EnforcementChains, certificate_id: int
) -> CertificateDossier:
    """The certificate, the body that issued it, its holder and products, its status history
    and inspections; the leads and cases concerning the certificate."""
    certificate = await certificates.read_certificate(session, certificate_id)
    registry_part = {
        "certificate": certificate,
        "body": await certification.read_body(session, certificate.body_id),
        "holder": await subjects.read_enterprise(session, certificate.holder_id, holdings=True),
        "products": certificate.products,
        "status_history": _page(
            await certificates.list_status_changes(session, certificate_id, None, LINKS_PER_PAGE)
        ),
        "inspections": await _inspections_of(
            session, principal, InspectionTarget.CERTIFICATE, certificate_id
        ),
    }
    chain = await _enforcement(session, chains, _subject(SubjectType.CERTIFICATE, certificate_id))
    return CertificateDossier(**registry_part, **chain)


async def enterprise_dossier(
    session: AsyncSession, principal: Principal, chains: EnforcementChains, enterprise_id: int
) -> EnterpriseDossier:
    """The enterprise, its products, certificates and inspections. The enterprise is the party
    of a case concerning its certificate or product as well as of one concerning itself: the
    enforcement chain is that of the enterprise and of the products and certificates shown."""
    enterprise = await subjects.read_enterprise(session, enterprise_id, holdings=True)
    products = _page(
        await subjects.list_products(session, {"holder_id": enterprise_id}, None, LINKS_PER_PAGE)
    )
    held = _page(
        await certificates.list_certificates(
            session, CertificateFilters(holder_id=enterprise_id), None, LINKS_PER_PAGE
        )
    )
    inspected = await _inspections_of(session, principal, InspectionTarget.ENTERPRISE, enterprise_id)
    chain = await _enforcement(
        session,
        chains,
        _subject(SubjectType.ENTERPRISE, enterprise_id),
        *(_subject(SubjectType.CERTIFICATE, c.id) for c in held.items),
        *(_subject(SubjectType.PRODUCT, p.id) for p in products.items),
    )
    return EnterpriseDossier(
        enterprise=enterprise, products=products, certificates=held, inspections=inspected, **chain
    )


async def body_dossier(
    session: AsyncSession, principal: Principal, chains: EnforcementChains, body_id: int
) -> BodyDossier:
    """The certification body, the auditors practising in it, the certificates it issued and
    its inspections; the leads and cases concerning the body."""
    body = await certification.read_body(session, body_id)
    registry_part = {
        "body": body,
        "auditors": _page(
            await certification.list_auditors(session, {"body_id": body_id}, None, LINKS_PER_PAGE)
        ),
        "certificates": _page(
            await certificates.list_certificates(
                session, CertificateFilters(body_id=body_id), None, LINKS_PER_PAGE
            )
        ),
        "inspections": await _inspections_of(session, principal, InspectionTarget.BODY, body_id),
    }
    chain = await _enforcement(session, chains, _subject(SubjectType.CERTIFICATION_BODY, body_id))
    return BodyDossier(**registry_part, **chain)


async def auditor_dossier(
    session: AsyncSession, principal: Principal, chains: EnforcementChains, auditor_id: int
) -> AuditorDossier:
    """The auditor, the bodies practised in (affiliations) and inspections; the leads and cases
    concerning the auditor."""
    auditor = await certification.read_auditor(session, auditor_id)
    registry_part = {
        "auditor": auditor,
        "affiliations": _page(
            await certification.list_affiliations(session, auditor_id, None, LINKS_PER_PAGE)
        ),
        "inspections": await _inspections_of(session, principal, InspectionTarget.AUDITOR, auditor_id),
    }
    chain = await _enforcement(session, chains, _subject(SubjectType.AUDITOR, auditor_id))
    return AuditorDossier(**registry_part, **chain)

"""Demo data for `make run`: a few certification bodies with their auditors, and per pilot
province a few enterprises, products and certificates, all with valid identifiers; and per
pilot unit the posts of the enforcement responsibility system (执法责任制) with the officers
holding them. Development only; idempotent (natural keys are looked up).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.registry.certification.identifiers import make_credit_code
from services.registry.certification.models import (
    ActivityKind,
    ActivityResult,
    Auditor,
    AuditorAffiliation,
    Certificate,
    CertificateAuditor,
    CertificateProduct,
    CertificateScheme,
    CertificateStatus,
    CertificateStatusChange,
    CertificationActivity,
    CertificationBody,
)
from services.registry.network.models import BodyKind, Bureau, Officer, Post
from services.registry.subjects.models import Enterprise, Product

SEED_ACTOR = "seed"
# (approval number, CCC body code, name, approved schemes, CCC designations)
BODIES = (
    ("CNCA-R-2002-001", "01", "华夏产品认证中心（演示）", ["ccc", "voluntary"], ["0901", "0201"]),
    ("CNCA-R-2003-017", None, "东方管理体系认证有限公司（演示）", ["qms", "ems", "ohsms"], []),
    ("CNCA-R-2006-052", "12", "长江质量认证有限公司（演示）", ["ccc", "qms"], ["0901"]),
)
# Per province: (enterprise name suffix, product name, CCC category, model)
ENTERPRISES = (
    ("电器有限公司", "家用电饭煲", "0901", "DFB-30A"),
    ("线缆股份有限公司", "聚氯乙烯绝缘电缆", "0201", "BV-450/750V"),
)


async def _one(session: AsyncSession, table: type, **where: Any) -> Any:
    statement = select(table).filter_by(**where).limit(1)
    return (await session.exec(statement)).scalars().first()  # type: ignore[arg-type]


async def _bodies(session: AsyncSession, national: Bureau, today: date) -> list[CertificationBody]:
    bodies = []
    for number, code, name, schemes, designations in BODIES:
        body = await _one(session, CertificationBody, approval_number=number)
        if body is None:
            approved = date(today.year - 2, 3, 1)
            body = CertificationBody(
                approval_number=number,
                ccc_body_code=code,
                name=name,
                approved_on=approved,
                approval_expires_on=approved.replace(year=approved.year + 6),
                approved_schemes=schemes,
                ccc_designations=designations,
                bureau_id=national.id,
                bureau_path=national.path,
            )
            session.add(body)
        bodies.append(body)
    await session.flush()
    for index, body in enumerate(bodies):
        for seat in (1, 2):
            registration = f"2026-NSC-{index + 1:02d}{seat:04d}"
            if await _one(session, Auditor, registration_number=registration):
                continue
            auditor = Auditor(
                registration_number=registration,
                name=f"演示审核员{index + 1}-{seat}",
                qualifications=body.approved_schemes,
                bureau_id=national.id,
                bureau_path=national.path,
            )
            session.add(auditor)
            await session.flush()
            session.add(
                AuditorAffiliation(auditor_id=auditor.id, body_id=body.id, started_on=body.approved_on)
            )
    await session.flush()
    return bodies


async def _certificate(
    session: AsyncSession,
    *,
    number: str,
    scheme: CertificateScheme,
    body: CertificationBody,
    holder: Enterprise,
    product: Product | None,
    issued: date,
    years: int,
) -> bool:
    if await _one(session, Certificate, number=number):
        return False
    auditors = (
        (
            await session.exec(  # type: ignore[call-overload]
                select(AuditorAffiliation.auditor_id).where(
                    AuditorAffiliation.body_id == body.id, AuditorAffiliation.ended_on.is_(None)
                )
            )
        )
        .scalars()
        .all()
    )
    certificate = Certificate(
        number=number,
        scheme=scheme,
        body_id=body.id,
        holder_id=holder.id,
        holder_name=holder.name,
        division_code=holder.division_code,
        scope=product.name if product else "家用电器的设计和生产",
        issued_on=issued,
        expires_on=issued.replace(year=issued.year + years) - timedelta(days=1),
        status=CertificateStatus.VALID,
        bureau_id=holder.bureau_id,
        bureau_path=holder.bureau_path,
    )
    session.add(certificate)
    await session.flush()
    if product is not None:
        session.add(CertificateProduct(certificate_id=certificate.id, product_id=product.id))
    for auditor_id in auditors:
        session.add(CertificateAuditor(certificate_id=certificate.id, auditor_id=auditor_id))
    for kind, result, when in (
        (ActivityKind.APPLICATION, ActivityResult.PENDING, issued - timedelta(days=60)),
        (ActivityKind.AUDIT, ActivityResult.CONFORMING, issued - timedelta(days=20)),
        (ActivityKind.DECISION, ActivityResult.GRANTED, issued),
    ):
        session.add(
            CertificationActivity(
                kind=kind,
                body_id=body.id,
                holder_id=holder.id,
                certificate_id=certificate.id if kind is ActivityKind.DECISION else None,
                auditor_ids=list(auditors),
                performed_on=when,
                result=result,
                bureau_id=holder.bureau_id,
                bureau_path=holder.bureau_path,
                recorded_by=SEED_ACTOR,
            )
        )
    session.add(
        CertificateStatusChange(
            certificate_id=certificate.id,
            from_status=None,
            to_status=CertificateStatus.VALID,
            reason="issued (demo data)",
            actor_kind=SEED_ACTOR,
            actor_id=SEED_ACTOR,
        )
    )
    return True


async def seed_demo_chain(
    session: AsyncSession, audit: AuditLog, national: Bureau, provinces: list[Bureau], today: date
) -> dict[str, int]:
    """Insert what is missing of the demo chain; the caller commits."""
    bodies = await _bodies(session, national, today)
    ccc_bodies = [b for b in bodies if b.ccc_body_code]
    system_body = next(b for b in bodies if "qms" in b.approved_schemes)
    made = 0
    for p_index, province in enumerate(provinces, start=1):
        prefix = province.name[:2]
        for e_index, (suffix, product_name, category, model) in enumerate(ENTERPRISES, start=1):
            serial = 10_000_000 + p_index * 100 + e_index
            credit = make_credit_code(province.division_code or "110000", serial)
            holder = await _one(session, Enterprise, credit_code=credit)
            if holder is None:
                holder = Enterprise(
                    credit_code=credit,
                    name=f"{prefix}演示{suffix}",
                    division_code=province.division_code,
                    address=f"{prefix}演示工业园{e_index}号",
                    bureau_id=province.id,
                    bureau_path=province.path,
                )
                session.add(holder)
                await session.flush()
            product = await _one(session, Product, holder_id=holder.id, model=model)
            if product is None:
                product = Product(
                    holder_id=holder.id,
                    name=product_name,
                    category_code=category,
                    model=model,
                    bureau_id=province.id,
                    bureau_path=province.path,
                )
                session.add(product)
                await session.flush()
            body = ccc_bodies[(p_index + e_index) % len(ccc_bodies)]
            issued = date(today.year - 1, (p_index % 12) + 1, 10)
            ccc_number = f"{issued.year}{body.ccc_body_code}{category}{p_index:03d}{e_index:03d}"
            made += await _certificate(
                session,
                number=ccc_number,
                scheme=CertificateScheme.CCC,
                body=body,
                holder=holder,
                product=product,
                issued=issued,
                years=5,
            )
            if e_index == 1:
                qms_number = f"00{issued.year % 100:02d}Q{p_index:03d}{e_index:02d}R0M"
                made += await _certificate(
                    session,
                    number=qms_number,
                    scheme=CertificateScheme.QMS,
                    body=system_body,
                    holder=holder,
                    product=None,
                    issued=issued,
                    years=3,
                )
    if made:
        await audit.record(session, None, "demo.seeded", "certificate", None, {"certificates": made})
    return {"certification_bodies": len(bodies), "demo_certificates_created": made}


# --- the enforcement responsibility system (执法责任制) of each pilot unit ----------------

# The procedure steps each post's holders may take: the enforcement service's step codes,
# kept here as data (the registry checks only their shape).
OFFICER_STEPS = (
    "assign_officers",
    "start_investigation",
    "close_investigation",
    "request_review",
    "serve_prior_notice",
    "request_hearing",
    "conclude_hearing",
    "serve_decision",
    "record_payment",
    "remind_payment",
    "record_hearing",
    "archive",
    "publish",
    "register_evidence",
    "decide_on_the_spot",
)
HEAD_STEPS = (
    "extend_lead_deadline",
    "open_case",
    "decline_lead",
    "assign_officers",
    "suspend_investigation",
    "resume_investigation",
    "terminate",
    "transfer",
    "extend_decision_deadline",
    "decide",
    "decide_no_penalty",
    "revise_decision",
    "close_case",
    "apply_court_enforcement",
    "extend_seizure",
    "decide_preservation",
)
# The legal-affairs reviewer's duties: the statistics service checks them when the reviewer
# answers in its review queue (/api/v1/statistics/reviews); enforcement then takes the step from
# the answer's event, never from a person.
LEGAL_STEPS = ("review_agree", "review_correct", "review_return")
# (post name, body, duties, steps)
DEMO_POSTS = (
    (
        "执法办案岗（演示）",
        BodyKind.ENFORCEMENT,
        "承办案件：调查取证、告知、送达、执行、结案公开",
        OFFICER_STEPS,
    ),
    ("执法机构负责人岗（演示）", BodyKind.ENFORCEMENT, "立案审批、处罚决定、中止终止、结案审批", HEAD_STEPS),
    ("法制审核岗（演示）", BodyKind.LEGAL, "重大执法决定法制审核、案件审核", LEGAL_STEPS),
)
# (key, officer name, post index in DEMO_POSTS, holds an enforcement credential). The gateway's
# seed gives each a login `<key>-<division>-<ee|qs>` and looks the officers up by these names.
DEMO_OFFICERS = (
    ("officer1", "演示执法员甲", 0, True),
    ("officer2", "演示执法员乙", 0, True),
    ("head", "演示执法负责人", 1, True),
    ("legal", "演示法制审核员", 2, False),
)
SYSTEM_CODES = {"entry_exit": "EE", "quality_supervision": "QS"}


async def seed_demo_officers(session: AsyncSession, audit: AuditLog, units: list[Bureau]) -> dict[str, int]:
    """Per pilot unit: the three demo posts and the four officers holding them (two enforcement
    officers and the head of the enforcement body, with credentials, and a legal-affairs
    reviewer). Inserts what is missing; the caller commits."""
    posts_made = officers_made = 0
    for unit in units:
        posts = []
        for name, body, duties, steps in DEMO_POSTS:
            post = await _one(session, Post, bureau_id=unit.id, name=name)
            if post is None:
                post = Post(bureau_id=unit.id, body=body, name=name, duties=duties, steps=list(steps))
                session.add(post)
                await session.flush()
                await audit.record(
                    session,
                    None,
                    "post.seeded",
                    "post",
                    post.id,
                    {"bureau_id": unit.id, "name": name, "steps": list(steps)},
                )
                posts_made += 1
            posts.append(post)
        for index, (_key, name, post_index, credential) in enumerate(DEMO_OFFICERS, start=1):
            if await _one(session, Officer, bureau_id=unit.id, name=name):
                continue
            post = posts[post_index]
            number = f"{unit.division_code}{SYSTEM_CODES[unit.system]}D{index:02d}" if credential else None
            officer = Officer(
                bureau_id=unit.id, body=post.body, post_id=post.id, name=name, credential_number=number
            )
            session.add(officer)
            await session.flush()
            await audit.record(
                session,
                None,
                "officer.seeded",
                "officer",
                officer.id,
                {"bureau_id": unit.id, "name": name, "post_id": post.id, "credential_number": number},
            )
            officers_made += 1
    return {"demo_posts_created": posts_made, "demo_officers_created": officers_made}

"""The rules of the case documents (执法文书): which document a case's state allows, the
templates' versions, the bureaus' document prefixes, and filling a template from the case."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.concurrency import check_if_match
from services.common.problems import Conflict, NotFound
from services.enforcement.calendar.service import deadline_rule
from services.enforcement.cases import repository as cases_repo
from services.enforcement.cases.models import Case, DecisionKind, PenaltyItem, Procedure
from services.enforcement.cases.service import DEFAULT_PREFIX
from services.enforcement.catalogue import repository as catalogue_repo
from services.enforcement.catalogue.models import Violation
from services.enforcement.catalogue.service import AMOUNT_KINDS, PenaltyKind
from services.enforcement.documents import repository as repo
from services.enforcement.documents.models import DocumentKind, DocumentTemplate
from services.enforcement.documents.rendering import (
    PLACEHOLDERS,
    RenderedDocument,
    chinese_date,
    fill,
    to_docx,
    yuan,
    yuan_in_capitals,
)
from services.enforcement.documents.schemas import (
    CaseDocument,
    DocumentPrefixRead,
    DocumentPrefixUpdate,
    DocumentTemplateRead,
    DocumentTemplates,
    DocumentTemplateUpdate,
)
from services.enforcement.registry import RegistryClient


@dataclass(frozen=True)
class Availability:
    title: str
    condition: str
    allows: Callable[[Case], bool]


# When the case's state allows each document: a document records a step already taken.
AVAILABILITY: dict[DocumentKind, Availability] = {
    DocumentKind.OPENING_APPROVAL: Availability(
        "立案审批表",
        "once the case is opened from a lead (ordinary procedure, 普通程序)",
        lambda case: case.procedure == Procedure.ORDINARY,
    ),
    DocumentKind.PRIOR_NOTICE: Availability(
        "行政处罚告知书",
        "once the prior notice of the proposed penalty is served (serve_prior_notice)",
        lambda case: case.notice_served_on is not None,
    ),
    DocumentKind.DECISION: Availability(
        "行政处罚决定书",
        "once a penalty is decided under the ordinary procedure (decide)",
        lambda case: (
            case.procedure == Procedure.ORDINARY
            and case.decision_kind == DecisionKind.PENALTY
            and case.decided_on is not None
        ),
    ),
}

PARTY_KINDS = {"organisation": "单位", "natural_person": "个人"}
SUBJECT_LABELS = {
    "certification_body": "认证机构",
    "auditor": "认证人员",
    "enterprise": "企业",
    "certificate": "认证证书",
    "product": "产品",
}
LEAD_SOURCES = {
    "inspection_referral": "监督检查中发现（移送）",
    "complaint": "投诉",
    "report": "举报",
    "transfer_in": "其他机关移送",
    "assigned_from_above": "上级机关交办",
}
PENALTY_WORDS = {
    PenaltyKind.WARNING: "警告",
    PenaltyKind.FINE: "罚款",
    PenaltyKind.CONFISCATION: "没收违法所得、非法财物",
    PenaltyKind.ORDER_TO_STOP: "责令停产停业",
    PenaltyKind.SUSPEND_CERTIFICATE: "暂停认证证书",
    PenaltyKind.REVOKE_CERTIFICATE: "撤销认证证书",
    PenaltyKind.REVOKE_APPROVAL: "撤销批准",
    PenaltyKind.ORDER_TO_CORRECT: "责令改正",
}
ORDINALS = "一二三四五六七八九十"
# The party's right to a hearing (听证), told only where the proposed penalty reaches the thresholds.
HEARING_CLAUSE = (
    "根据《中华人民共和国行政处罚法》第六十三条、第六十四条的规定，你（单位）有权要求举行听证。"
    "如要求听证，应当在收到本告知书之日起{answer_period}内向本机关提出，逾期视为放弃听证权利。"
)


# --- document prefixes (文号) ------------------------------------------------------


def _prefix_read(bureau_id: int, prefix: str | None, year: int) -> DocumentPrefixRead:
    shown = prefix or DEFAULT_PREFIX
    return DocumentPrefixRead(
        bureau_id=bureau_id, prefix=shown, is_default=prefix is None, example=f"{shown}〔{year}〕1号"
    )


async def _bureau_in_scope(registry: RegistryClient, principal: Principal, bureau_id: int) -> None:
    bureau = await registry.bureau(bureau_id)
    if not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")  # the same answer as a bureau that does not exist


async def read_prefix(
    session: AsyncSession, registry: RegistryClient, principal: Principal, bureau_id: int, year: int
) -> DocumentPrefixRead:
    await _bureau_in_scope(registry, principal, bureau_id)
    return _prefix_read(bureau_id, await repo.prefix_of(session, bureau_id), year)


async def set_prefix(
    session: AsyncSession,
    audit: AuditLog,
    registry: RegistryClient,
    principal: Principal,
    bureau_id: int,
    data: DocumentPrefixUpdate,
    year: int,
) -> DocumentPrefixRead:
    """Sets the bureau's prefix for the cases it opens from now on; numbers given keep theirs."""
    await _bureau_in_scope(registry, principal, bureau_id)
    previous = await repo.set_prefix(session, bureau_id, data.prefix)
    await audit.record(
        session,
        principal,
        "bureau_document_prefix.changed",
        "bureau",
        bureau_id,
        {"prefix": data.prefix, "previous": previous},
    )
    return _prefix_read(bureau_id, data.prefix, year)


# --- templates -------------------------------------------------------------------


def _template_read(row: DocumentTemplate, newest: int) -> DocumentTemplateRead:
    return DocumentTemplateRead.model_validate(
        {**row.model_dump(warnings=False), "current": row.version == newest}
    )


async def list_templates(
    session: AsyncSession, kind: DocumentKind | None, current_only: bool
) -> DocumentTemplates:
    newest = await repo.newest_versions(session)
    rows = await repo.templates(session, kind)
    reads = [_template_read(r, newest[r.kind]) for r in rows]
    return DocumentTemplates(
        templates=[r for r in reads if r.current or not current_only], placeholders=PLACEHOLDERS
    )


async def read_template(
    session: AsyncSession, kind: DocumentKind, version: int | None
) -> DocumentTemplateRead:
    rows = await repo.templates(session, kind)
    if not rows:
        raise NotFound(f"No template of {kind}.")
    found = next((r for r in rows if version is None or r.version == version), None)
    if found is None:
        raise NotFound(f"The template of {kind} has no version {version}.")
    return _template_read(found, rows[0].version)


async def add_template_version(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    kind: DocumentKind,
    data: DocumentTemplateUpdate,
    if_match: str | None,
) -> DocumentTemplateRead:
    """A new version of the kind's template; the old ones are kept, documents use the new one."""
    await repo.lock_template_kind(session, kind)
    current = await repo.newest_template(session, kind)
    newest = current.version if current else 0
    check_if_match(if_match, newest)  # a new version names the one it was written from
    row = await repo.add(
        session,
        DocumentTemplate(
            kind=kind,
            version=newest + 1,
            title=data.title,
            body=data.body,
            note=data.note,
            created_by=principal.account_id,
        ),
    )
    await audit.record(
        session,
        principal,
        "document_template.versioned",
        "document_template",
        f"{kind}/{row.version}",
        {"kind": kind, "version": row.version, "title": row.title, "note": row.note},
    )
    return _template_read(row, row.version)


# --- a case's documents -----------------------------------------------------------


def file_name(case: Case, kind: DocumentKind) -> str:
    return f"{case.number}-{AVAILABILITY[kind].title}.docx"


def content_disposition(case: Case, kind: DocumentKind) -> str:
    """An ASCII name for old clients, and the case number's own (RFC 6266 / RFC 5987)."""
    fallback = f"case-{case.id}-{kind}.docx"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name(case, kind))}"


async def list_documents(session: AsyncSession, case: Case, base: str) -> list[CaseDocument]:
    versions = await repo.newest_versions(session)
    out = []
    for kind, rule in AVAILABILITY.items():
        available = rule.allows(case)
        out.append(
            CaseDocument(
                kind=kind,
                title=rule.title,
                available=available,
                condition=rule.condition,
                template_version=versions.get(kind),
                file_name=file_name(case, kind),
                href=f"{base}/{kind}" if available else None,
            )
        )
    return out


def _amount_line(item: PenaltyItem) -> str:
    word = PENALTY_WORDS.get(PenaltyKind(item.kind), item.kind)
    if item.kind in AMOUNT_KINDS and item.amount_initial is not None:
        amount = item.amount_initial
        return f"{word}人民币{yuan(amount)}元（大写：人民币{yuan_in_capitals(amount)}）"
    if item.certificate_number:
        return f"{word}（证书编号：{item.certificate_number}）"
    return word


def _penalty_lines(items: list[PenaltyItem]) -> str:
    return "\n".join(
        f"（{ORDINALS[i] if i < len(ORDINALS) else i + 1}）{_amount_line(item)}"
        for i, item in enumerate(items)
    )


def _violation_text(violation: Violation | None, case: Case) -> str:
    """The catalogue's entry as it holds it (its title, the article of its regulation)."""
    if violation is None:
        return case.violation_code or ""
    return violation.title + (f"（第{violation.article}条）" if violation.article else "")


def _period(rule) -> str:
    return f"{rule.days}个工作日" if rule.day_kind == "working" else f"{rule.days}日"


async def _values(
    session: AsyncSession, registry: RegistryClient, case: Case, kind: DocumentKind
) -> dict[str, str]:
    bureau = await registry.bureau(case.bureau_id)
    officers = [o for o in await cases_repo.all_officers(session, case.id) if o.released_on is None]  # type: ignore[arg-type]
    subjects = await cases_repo.subjects(session, case.id)  # type: ignore[arg-type]
    lead = await cases_repo.get_lead(session, case.lead_id) if case.lead_id else None
    steps = await cases_repo.timeline(session, case.id, case.lead_id)
    opening = next((s for s in steps if s.step == "open_case"), None)
    violation = (
        await catalogue_repo.newest_violation(session, case.violation_code, case.violation_regulation)
        if case.violation_code
        else None
    )
    stage = "decided" if kind == DocumentKind.DECISION else "proposed"
    items = await cases_repo.penalties(session, case.id, stage)  # type: ignore[arg-type]
    total = sum((i.amount_initial or Decimal("0") for i in items if i.kind in AMOUNT_KINDS), Decimal("0"))
    answer_period = _period(await deadline_rule(session, "prior_notice_answer", case.rule_set))
    payment = await deadline_rule(session, "payment", case.rule_set)
    hearing = case.flag_reasons.get("hearing_allowed", False)
    return {
        "case_number": case.number,
        "bureau_name": bureau.name,
        "case_title": case.title,
        "party_name": case.party_name,
        "party_kind": PARTY_KINDS.get(case.party_kind, case.party_kind),
        "subjects": "\n".join(
            f"{SUBJECT_LABELS.get(s.subject_type, s.subject_type)}：{s.name}"
            + (f"（编号：{s.number}）" if s.number and s.number != s.name else "")
            for s in subjects
        )
        or "无",
        "lead_source": LEAD_SOURCES.get(lead.source, lead.source) if lead else "",
        "lead_received_on": chinese_date(lead.received_on if lead else None),
        "lead_summary": lead.summary if lead else "",
        "opening_reason": (opening.reason or "") if opening else "",
        "approved_by": (opening.officer_name or "") if opening else "",
        "opened_on": chinese_date(case.opened_on),
        "officers": "、".join(f"{o.name}（执法证号：{o.credential_number}）" for o in officers),
        "facts": case.facts or "",
        "violation": _violation_text(violation, case),
        "legal_basis": case.legal_basis or "",
        "penalties": _penalty_lines(items),
        "amount_total": yuan(total),
        "amount_total_capital": "人民币" + yuan_in_capitals(total),
        "answer_period": answer_period,
        "hearing_clause": HEARING_CLAUSE.format(answer_period=answer_period) if hearing else "",
        "notice_date": chinese_date(case.notice_served_on),
        "decided_on": chinese_date(case.decided_on),
        "payment_deadline": f"收到本决定书之日起{_period(payment)}内",
    }


async def render_document(
    session: AsyncSession, registry: RegistryClient, case: Case, kind: DocumentKind
) -> tuple[bytes, RenderedDocument]:
    """The document as DOCX, from the newest version of its template."""
    rule = AVAILABILITY[kind]
    if not rule.allows(case):
        raise Conflict(
            f"The case's state does not allow the {rule.title} yet: it is available {rule.condition}.",
            slug="document-not-available",
            kind=kind,
            state=case.state,
            condition=rule.condition,
        )
    template = await repo.newest_template(session, kind)
    if template is None:  # seeded by the migration; only a database emptied by hand lacks one
        raise Conflict(f"No template of {kind} is stored.", slug="document-template-missing", kind=kind)
    rendered = RenderedDocument(
        kind=kind,
        title=template.title,
        template_version=template.version,
        case_number=case.number,
        text=fill(template.body, await _values(session, registry, case, kind)),
    )
    # Building the DOCX is CPU work: off the event loop.
    return await asyncio.to_thread(to_docx, rendered), rendered

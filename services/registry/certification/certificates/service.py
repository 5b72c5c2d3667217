"""Rules of certificates (认证证书): registration, corrections, status steps and history.

Certificates are readable by every authenticated principal and writable only
within scope (the bureau keeping the record): outside it a write answers 404,
exactly as for a missing certificate. Functions here never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.concurrency import check_if_match
from services.common.context import current_request_id
from services.common.db import Database, utcnow
from services.common.event_schemas import CertificateStatusChanged
from services.common.outbox import Outbox
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, NotFound, UnprocessableEntity
from services.common.transitions import Transition, TransitionTable
from services.registry.certification.certificates import repository as repo
from services.registry.certification.certificates import rules
from services.registry.certification.certificates.repository import CertificateFilters
from services.registry.certification.certificates.schemas import (
    CertificateCreate,
    CertificateRead,
    CertificateStep,
    CertificateSummary,
    CertificateUpdate,
    StatusChangeCreate,
    StatusChangeRead,
)
from services.registry.certification.models import (
    BodyStatus,
    Certificate,
    CertificateStatus,
    CertificateStatusChange,
)
from services.registry.deps import REGISTRY_WRITER_ROLES
from services.registry.models import OUTBOX
from services.registry.subjects.models import EnterpriseStatus

VALID, SUSPENDED = CertificateStatus.VALID, CertificateStatus.SUSPENDED
REVOKED, CANCELLED = CertificateStatus.REVOKED, CertificateStatus.CANCELLED

# Who may take a step: the registry's writers, and the platform's services (the consumer of
# enforcement decisions applies them in the name of the deciding bureau).
STEP_ROLES = frozenset({*REGISTRY_WRITER_ROLES, Role.SERVICE})
# The certificate's state machine (DOMAIN.md, Certified subjects): valid → suspended → valid |
# revoked; valid → revoked; valid → cancelled; suspended → cancelled. Each records its reason.
CERTIFICATE_STEPS = TransitionTable(
    "certificate",
    [
        Transition(CertificateStep.SUSPEND, frozenset({VALID}), SUSPENDED, STEP_ROLES, ("reason",)),
        Transition(CertificateStep.RESTORE, frozenset({SUSPENDED}), VALID, STEP_ROLES, ("reason",)),
        Transition(CertificateStep.REVOKE, frozenset({VALID, SUSPENDED}), REVOKED, STEP_ROLES, ("reason",)),
        Transition(CertificateStep.CANCEL, frozenset({VALID, SUSPENDED}), CANCELLED, STEP_ROLES, ("reason",)),
    ],
)
# The step a stored (from, to) pair was; the registration is from nothing to valid.
STEP_OF = {(None, VALID): "issue"} | {
    (source, t.target): str(t.step) for t in CERTIFICATE_STEPS.transitions for source in t.sources
}


def _not_found(certificate_id: int) -> NotFound:
    return NotFound(f"Certificate {certificate_id} not found.")


def _field_error(loc: str, message: str, kind: str) -> UnprocessableEntity:
    return UnprocessableEntity(message, errors=[{"loc": loc, "message": message, "type": kind}])


# --- reads -----------------------------------------------------------------


def summary(row: dict[str, Any], on: date) -> CertificateSummary:
    return CertificateSummary.model_validate({**row, **rules.conditions(row, on)})


async def read_certificate(session: AsyncSession, certificate_id: int) -> CertificateRead:
    row = await repo.certificate_row(session, certificate_id)
    if row is None:
        raise _not_found(certificate_id)
    return CertificateRead.model_validate(
        {
            **row,
            **rules.conditions(row, rules.today()),
            "products": await repo.certified_products(session, certificate_id),
            "auditors": await repo.certifying_auditors(session, certificate_id),
        }
    )


async def read_certificate_record(db: Database, certificate_id: int) -> dict[str, Any]:
    """``read_certificate`` on the driver connection, as the row CertificateRead is written from
    (for the item route's fast_json; the same fields and values)."""
    found = await repo.certificate_record(db, certificate_id)
    if found is None:
        raise _not_found(certificate_id)
    row, products, auditors = found
    return {**row, **rules.conditions(row, rules.today()), "products": products, "auditors": auditors}


async def list_certificates(
    session: AsyncSession, filters: CertificateFilters, cursor: str | None, limit: int
) -> tuple[list[CertificateSummary], str | None]:
    after = decode_cursor(cursor, int)
    on = rules.today()
    rows = await repo.list_certificate_rows(
        session, filters, on, before_id=after[0] if after else None, limit=limit + 1
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [summary(r, on) for r in page], next_cursor


async def list_status_changes(
    session: AsyncSession, certificate_id: int, cursor: str | None, limit: int
) -> tuple[list[StatusChangeRead], str | None]:
    if await repo.certificate_row(session, certificate_id) is None:
        raise _not_found(certificate_id)
    after = decode_cursor(cursor, int)
    rows = await repo.status_change_rows(
        session, certificate_id, after_id=after[0] if after else None, limit=limit + 1
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [status_change_read(r) for r in page], next_cursor


def status_change_read(row: dict[str, Any]) -> StatusChangeRead:
    step = STEP_OF.get((row["from_status"], row["to_status"]), "unknown")
    return StatusChangeRead.model_validate({**row, "step": step})


async def export_rows(sessionmaker, filters: CertificateFilters, chunk: int) -> AsyncIterator[list[dict]]:
    """The filtered certificates in chunks, over a server-side cursor: never all in memory."""
    on = rules.today()
    async with sessionmaker() as session:
        result = await session.stream(repo.export_query(filters, on).execution_options(yield_per=chunk))
        async for rows in result.mappings().partitions(chunk):
            yield [{**row, **rules.conditions(row, on)} for row in rows]


# --- writes ----------------------------------------------------------------


async def _keeping_bureau(session: AsyncSession, principal: Principal, bureau_id: int | None):
    if bureau_id is None or bureau_id == principal.bureau_id:
        return principal.bureau_id, principal.bureau_path
    bureau = await repo.get_bureau(session, bureau_id)
    if bureau is None or not principal.in_scope(bureau.path):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return bureau.id, bureau.path


async def _check_references(session: AsyncSession, data: CertificateCreate):
    body = await repo.get_body(session, data.body_id)
    if body is None:
        raise _field_error("body.body_id", f"No certification body {data.body_id}.", "body_id")
    if body.status != BodyStatus.APPROVED:
        raise Conflict(
            f"Certification body {body.id} is {body.status}, not approved: it cannot issue certificates.",
            slug="body-not-approved",
            body_status=body.status,
        )
    holder = await repo.get_enterprise(session, data.holder_id)
    if holder is None:
        raise _field_error("body.holder_id", f"No enterprise {data.holder_id}.", "holder_id")
    if holder.status == EnterpriseStatus.MERGED:
        raise Conflict(
            f"Enterprise {holder.id} was merged into {holder.merged_into_id}: name that one as holder.",
            slug="enterprise-merged",
            merged_into_id=holder.merged_into_id,
        )
    holders = await repo.product_holders(session, data.product_ids)
    missing = [p for p in data.product_ids if p not in holders]
    if missing:
        raise _field_error("body.product_ids", f"No products {missing}.", "product_ids")
    foreign = [p for p in data.product_ids if holders[p] != holder.id]
    if foreign:
        raise Conflict(
            f"Products {foreign} are not products of enterprise {holder.id}.",
            slug="product-not-of-holder",
            product_ids=foreign,
        )
    known = await repo.existing_auditors(session, data.auditor_ids)
    unknown = [a for a in data.auditor_ids if a not in known]
    if unknown:
        raise _field_error("body.auditor_ids", f"No auditors {unknown}.", "auditor_ids")
    return holder


def _actor_fields(actor: Principal) -> dict[str, Any]:
    return {
        "actor_kind": actor.kind.value,
        "actor_id": actor.account_id,
        "actor_bureau_id": actor.bureau_id,
        "request_id": current_request_id(),
    }


async def create_certificate(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: CertificateCreate
) -> CertificateRead:
    bureau_id, bureau_path = await _keeping_bureau(session, principal, data.bureau_id)
    expires_on = data.expires_on or rules.default_expiry(data.scheme, data.issued_on)
    if expires_on is None:
        raise _field_error(
            "body.expires_on",
            f"A {data.scheme} certificate has no default validity: name its expires_on.",
            "missing",
        )
    if await repo.number_taken(session, data.scheme, data.number):
        raise Conflict(
            f"A {data.scheme} certificate numbered {data.number} is already registered.",
            slug="certificate-number-taken",
        )
    holder = await _check_references(session, data)
    now = utcnow()
    certificate = await repo.insert_certificate(
        session,
        Certificate(
            number=data.number,
            scheme=data.scheme,
            body_id=data.body_id,
            holder_id=holder.id,
            holder_name=holder.name,
            division_code=holder.division_code,
            scope=data.scope,
            issued_on=data.issued_on,
            expires_on=expires_on,
            status=VALID,
            status_changed_at=now,
            bureau_id=bureau_id,
            bureau_path=bureau_path,
            created_at=now,
            updated_at=now,
        ),
        data.product_ids,
        data.auditor_ids,
    )
    assert certificate.id is not None
    await repo.add_status_change(
        session,
        CertificateStatusChange(
            certificate_id=certificate.id,
            from_status=None,
            to_status=VALID,
            reason="certificate registered",
            changed_at=now,
            **_actor_fields(principal),
        ),
    )
    await audit.record(
        session,
        principal,
        "certificate.created",
        "certificate",
        certificate.id,
        {**data.model_dump(mode="json"), "expires_on": expires_on.isoformat(), "bureau_id": bureau_id},
    )
    return await read_certificate(session, certificate.id)


async def update_certificate(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    certificate: Certificate,
    data: CertificateUpdate,
    if_match: str | None,
) -> CertificateRead:
    """Correct the scope or expiry of a certificate the route loaded (locked, in scope)."""
    check_if_match(if_match, certificate.version)
    assert certificate.id is not None
    certificate_id = certificate.id
    changes = data.model_dump(exclude_unset=True, mode="json")
    if not changes:
        raise _field_error("body", "Name at least one field to change.", "empty_update")
    if data.expires_on is not None and data.expires_on <= certificate.issued_on:
        raise _field_error(
            "body.expires_on", f"expires_on must be after issued_on ({certificate.issued_on}).", "value_error"
        )
    values = data.model_dump(exclude_unset=True)
    await repo.bump_certificate(session, certificate_id, values)
    await audit.record(session, principal, "certificate.updated", "certificate", certificate_id, changes)
    return await read_certificate(session, certificate_id)


async def load_certificate_for_change(session: AsyncSession, certificate_id: int) -> Certificate | None:
    """The certificate locked (``FOR UPDATE``) for a change, or None; the write routes' loader
    and the decision-event consumer both load through it."""
    return await repo.get_certificate(session, certificate_id, for_update=True)


async def change_certificate_status(
    session: AsyncSession,
    audit: AuditLog,
    certificate: Certificate,
    step: str,
    *,
    reason: str,
    case_ref: str | None,
    actor: Principal,
    decision_event_id: str | None = None,
    suspended_until: date | None = None,
    outbox: Outbox = OUTBOX,
) -> CertificateStatusChange:
    """Take one status step on a certificate the caller has loaded and locked (``FOR UPDATE``).

    Writes the history record (who, when, why, case, decision event), bumps the version,
    records the audit entry and adds ``registry.certificate.status_changed`` to the outbox.
    Raises InvalidTransition (409, ``allowed`` listing the steps the actor may take instead)
    when the current status does not allow the step, Forbidden (403) when the actor holds
    none of STEP_ROLES, UnprocessableEntity (422) without a reason. Scope and If-Match are
    the caller's to check; nothing is committed.
    """
    transition = CERTIFICATE_STEPS.resolve(certificate.status, str(step), actor)
    CERTIFICATE_STEPS.check_records(transition, {"reason": reason})
    step, target = transition.step, transition.target
    assert certificate.id is not None
    source = CertificateStatus(certificate.status)
    now = utcnow()
    change = await repo.add_status_change(
        session,
        CertificateStatusChange(
            certificate_id=certificate.id,
            from_status=source,
            to_status=target,
            reason=reason,
            case_ref=case_ref,
            suspended_until=suspended_until,
            decision_event_id=decision_event_id,
            changed_at=now,
            **_actor_fields(actor),
        ),
    )
    certificate.status = target
    certificate.status_changed_at = now
    certificate.suspended_until = suspended_until if target == SUSPENDED else None
    certificate.version += 1
    certificate.updated_at = now
    await session.flush()
    await audit.record(
        session,
        actor,
        "certificate.status_changed",
        "certificate",
        certificate.id,
        {
            "step": str(step),
            "from_status": source.value,
            "to_status": target.value,
            "reason": reason,
            "case_ref": case_ref,
            "suspended_until": suspended_until.isoformat() if suspended_until else None,
            "decision_event_id": decision_event_id,
            "version": certificate.version,
        },
    )
    await outbox.emit(
        session,
        "registry.certificate.status_changed",
        aggregate_type="certificate",
        aggregate_id=certificate.id,
        aggregate_version=certificate.version,
        bureau_id=certificate.bureau_id,
        bureau_path=certificate.bureau_path,
        payload=CertificateStatusChanged(
            certificate_id=certificate.id,
            number=certificate.number,
            scheme=certificate.scheme,
            from_status=source,
            to_status=target,
            reason=reason,
            case_ref=case_ref,
            changed_at=now,
        ),
    )
    return change


async def request_status_change(
    session: AsyncSession,
    audit: AuditLog,
    outbox: Outbox,
    principal: Principal,
    certificate: Certificate,
    data: StatusChangeCreate,
    if_match: str | None,
) -> tuple[StatusChangeRead, int]:
    """A status step asked for over the API on a certificate the route loaded (locked, in
    scope): If-Match, then the step. Returns the history record and the new version."""
    check_if_match(if_match, certificate.version)
    change = await change_certificate_status(
        session,
        audit,
        certificate,
        data.step,
        reason=data.reason,
        case_ref=data.case_ref,
        actor=principal,
        suspended_until=data.suspended_until,
        outbox=outbox,
    )
    return status_change_read(change.model_dump()), certificate.version

"""Rules of the certification chain's actors: certification bodies (认证机构), their
personnel (认证人员) and the certification activities (认证活动) they perform.

* A body's approval (批准书) runs a period kept as data (six years) and is renewed
  ahead of expiry (the notice period, thirty days); the read model says whether it
  has expired and whether renewal is due.
* An auditor practises in one body at a time; a revoked auditor is barred from
  registering or practising again for a period (five years, art. 72).
* An activity names who did it (the body and its auditors, each practising there
  on the day) and when; a surveillance moves its certificate's last surveillance day.

Functions here never commit: the route commits once, after the audit entries.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.concurrency import check_if_match
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, InvalidTransition, NotFound
from services.registry.certification import repository as repo
from services.registry.certification import rules
from services.registry.certification.models import (
    ActivityKind,
    ActivityResult,
    Auditor,
    AuditorAffiliation,
    AuditorStatus,
    BodyStatus,
    CertificateScheme,
    CertificateStatus,
    CertificationActivity,
    CertificationBody,
)
from services.registry.certification.schemas import (
    ActivityCreate,
    ActivityRead,
    AffiliationCreate,
    AffiliationEnd,
    AffiliationRead,
    AuditorCreate,
    AuditorRead,
    AuditorUpdate,
    BodyCreate,
    BodyRead,
    BodyUpdate,
)
from services.registry.scope import field_error, keeping_bureau
from services.registry.subjects.service import active_holder

# How a body's status may move (a move to the same status changes nothing).
BODY_STATUS_MOVES: dict[BodyStatus, frozenset[BodyStatus]] = {
    BodyStatus.APPROVED: frozenset({BodyStatus.SUSPENDED, BodyStatus.REVOKED, BodyStatus.EXPIRED}),
    BodyStatus.SUSPENDED: frozenset({BodyStatus.APPROVED, BodyStatus.REVOKED, BodyStatus.EXPIRED}),
    BodyStatus.EXPIRED: frozenset({BodyStatus.APPROVED, BodyStatus.REVOKED}),  # renewed, or revoked
    BodyStatus.REVOKED: frozenset(),
}

# How an auditor's registration may move; revoked → registered only once the bar has run.
AUDITOR_STATUS_MOVES: dict[AuditorStatus, frozenset[AuditorStatus]] = {
    AuditorStatus.REGISTERED: frozenset({AuditorStatus.SUSPENDED, AuditorStatus.REVOKED}),
    AuditorStatus.SUSPENDED: frozenset({AuditorStatus.REGISTERED, AuditorStatus.REVOKED}),
    AuditorStatus.REVOKED: frozenset({AuditorStatus.REGISTERED}),
}

# The results each kind of activity can have.
ACTIVITY_RESULTS: dict[ActivityKind, frozenset[ActivityResult]] = {
    ActivityKind.APPLICATION: frozenset({ActivityResult.PENDING, ActivityResult.REFUSED}),
    ActivityKind.AUDIT: frozenset(
        {ActivityResult.PENDING, ActivityResult.CONFORMING, ActivityResult.NONCONFORMING}
    ),
    ActivityKind.DECISION: frozenset({ActivityResult.GRANTED, ActivityResult.REFUSED}),
    ActivityKind.SURVEILLANCE: frozenset(
        {ActivityResult.PENDING, ActivityResult.CONFORMING, ActivityResult.NONCONFORMING}
    ),
    ActivityKind.RECERTIFICATION: frozenset(
        {
            ActivityResult.PENDING,
            ActivityResult.CONFORMING,
            ActivityResult.NONCONFORMING,
            ActivityResult.GRANTED,
            ActivityResult.REFUSED,
        }
    ),
}
# Kinds that concern a certificate already issued, and the states it may be in for them.
CERTIFICATE_KINDS = frozenset({ActivityKind.SURVEILLANCE, ActivityKind.RECERTIFICATION})
SURVEILLED_STATES = frozenset({CertificateStatus.VALID, CertificateStatus.SUSPENDED})


def _not_in_future(day: date, loc: str) -> None:
    if day > rules.today():
        raise field_error(loc, f"{day} is in the future.", "date_in_future")


# --- certification bodies ---------------------------------------------------


def _body_read(row: dict[str, Any]) -> BodyRead:
    today = rules.today()
    expires_on = row["approval_expires_on"]
    return BodyRead.model_validate(
        {
            **row,
            "approval_expired": rules.approval_expired(expires_on, today),
            "renewal_due": row["status"] == BodyStatus.APPROVED and rules.renewal_due(expires_on, today),
        }
    )


async def read_body(session: AsyncSession, body_id: int) -> BodyRead:
    row = await repo.body_row(session, body_id)
    if row is None:
        raise NotFound(f"Certification body {body_id} not found.")
    return _body_read(row)


async def list_bodies(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[BodyRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_body_rows(session, filters, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [_body_read(r) for r in page], next_cursor


_BODY_UNIQUE = {
    "approval_number": ("approval-number-taken", "approval number"),
    "credit_code": ("body-credit-code-taken", "credit code"),
    "ccc_body_code": ("ccc-body-code-taken", "CCC body code"),
}


async def _check_body(
    session: AsyncSession, values: dict[str, Any], body_id: int | None, *, approving: bool = True
) -> None:
    """The rules a body's record keeps, on the values it will have after the change.
    ``approving``: the change grants or renews the approval (its status or dates), so an
    approval already run out may not be recorded as approved."""
    approved_on, expires_on = values["approved_on"], values["approval_expires_on"]
    if expires_on <= approved_on:
        raise field_error(
            "body.approval_expires_on",
            f"The approval cannot expire ({expires_on}) before it was granted ({approved_on}).",
            "date_order",
        )
    if CertificateScheme.CCC not in values["approved_schemes"]:
        for field in ("ccc_designations", "ccc_body_code"):
            if values[field]:
                raise field_error(
                    f"body.{field}",
                    "Only a body approved for the ccc scheme has CCC designations.",
                    "ccc_scheme",
                )
    for column, (slug, label) in _BODY_UNIQUE.items():
        value = values.get(column)
        holder = await repo.body_holding(session, column, value) if value is not None else None
        if holder is not None and holder.id != body_id:
            raise Conflict(
                f"The {label} {value} is already recorded for body {holder.id}.",
                slug=slug,
                existing_id=holder.id,
            )
    if (
        approving
        and values["status"] == BodyStatus.APPROVED
        and rules.approval_expired(expires_on, rules.today())
    ):
        raise Conflict(
            f"The approval expired on {expires_on}: record the body as expired, or give the renewed dates.",
            slug="approval-expired",
        )


async def create_body(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: BodyCreate
) -> BodyRead:
    bureau = await keeping_bureau(session, principal, data.bureau_id)
    values = data.model_dump(exclude={"bureau_id"})
    if values["approval_expires_on"] is None:
        values["approval_expires_on"] = rules.approval_expiry(data.approved_on)
    await _check_body(session, values, None)
    body = await repo.add(
        session,
        CertificationBody(
            **{**values, "approved_schemes": [str(s) for s in data.approved_schemes]},
            bureau_id=bureau.id,
            bureau_path=bureau.path,
        ),
    )
    await audit.record(
        session,
        principal,
        "certification_body.created",
        "certification_body",
        body.id,
        {**data.model_dump(mode="json"), "approval_expires_on": str(values["approval_expires_on"])},
    )
    return await read_body(session, body.id)  # type: ignore[arg-type]


async def update_body(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    body: CertificationBody,
    data: BodyUpdate,
    if_match: str | None,
) -> BodyRead:
    """Change the body (loaded, locked and in the principal's scope)."""
    body_id: int = body.id  # type: ignore[assignment]
    check_if_match(if_match, body.version)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise field_error("body", "Name at least one field to change.", "empty_update")
    if "approved_on" in changes and "approval_expires_on" not in changes:
        changes["approval_expires_on"] = rules.approval_expiry(changes["approved_on"])
    if "approved_schemes" in changes:
        changes["approved_schemes"] = [str(s) for s in changes["approved_schemes"]]
    status = changes.get("status", body.status)
    if status != body.status and status not in BODY_STATUS_MOVES[BodyStatus(body.status)]:
        allowed = sorted(BODY_STATUS_MOVES[BodyStatus(body.status)])
        raise InvalidTransition(
            f"A {body.status} body cannot become {status}; it may become: {', '.join(allowed) or 'nothing'}.",
            allowed=allowed,
        )
    current = {column: getattr(body, column) for column in BodyUpdate.model_fields}
    # An approval that ran out unrecorded does not block a change of name or scope.
    approving = bool({"status", "approved_on", "approval_expires_on"} & changes.keys())
    await _check_body(session, {**current, **changes}, body_id, approving=approving)
    await repo.update_body(session, body_id, changes)
    record = data.model_dump(exclude_unset=True, mode="json")
    if "approval_expires_on" in changes:
        record["approval_expires_on"] = str(changes["approval_expires_on"])
    await audit.record(
        session, principal, "certification_body.updated", "certification_body", body_id, record
    )
    session.expire_all()
    return await read_body(session, body_id)


# --- auditors -----------------------------------------------------------------


def _auditor_read(row: dict[str, Any]) -> AuditorRead:
    affiliation = None
    if row["affiliation_id"] is not None:
        affiliation = AffiliationRead(
            id=row["affiliation_id"],
            auditor_id=row["id"],
            body_id=row["affiliation_body_id"],
            started_on=row["affiliation_started_on"],
            ended_on=None,
            created_at=row["affiliation_created_at"],
        )
    barred = None
    if row["status"] == AuditorStatus.REVOKED and row["status_changed_on"] is not None:
        barred = rules.barred_until(row["status_changed_on"])
    return AuditorRead.model_validate({**row, "current_affiliation": affiliation, "barred_until": barred})


async def read_auditor(session: AsyncSession, auditor_id: int) -> AuditorRead:
    row = await repo.auditor_row(session, auditor_id)
    if row is None:
        raise NotFound(f"Auditor {auditor_id} not found.")
    return _auditor_read(row)


async def list_auditors(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[AuditorRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_auditor_rows(session, filters, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [_auditor_read(r) for r in page], next_cursor


def _refuse_if_barred(auditor: Auditor, on: date) -> None:
    """A revoked auditor may not register or practise again until the bar has run (art. 72)."""
    if auditor.status != AuditorStatus.REVOKED or auditor.status_changed_on is None:
        return
    until = rules.barred_until(auditor.status_changed_on)
    if on < until:
        raise Conflict(
            f"Auditor {auditor.registration_number}'s qualification was revoked on"
            f" {auditor.status_changed_on}: barred until {until}"
            f" ({rules.AUDITOR_REVOCATION_BAR.value} {rules.AUDITOR_REVOCATION_BAR.unit}).",
            slug="auditor-barred",
            barred_until=str(until),
        )


async def create_auditor(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: AuditorCreate
) -> AuditorRead:
    bureau = await keeping_bureau(session, principal, data.bureau_id)
    holder = await repo.auditor_by_registration(session, data.registration_number)
    if holder is not None:
        _refuse_if_barred(holder, rules.today())
        raise Conflict(
            f"Registration number {data.registration_number} is already recorded for auditor {holder.id}.",
            slug="registration-number-taken",
            existing_id=holder.id,
        )
    auditor = await repo.add(
        session,
        Auditor(**data.model_dump(exclude={"bureau_id"}), bureau_id=bureau.id, bureau_path=bureau.path),
    )
    await audit.record(
        session,
        principal,
        "auditor.created",
        "auditor",
        auditor.id,
        {**data.model_dump(mode="json"), "bureau_id": bureau.id},
    )
    return await read_auditor(session, auditor.id)  # type: ignore[arg-type]


async def update_auditor(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    auditor: Auditor,
    data: AuditorUpdate,
    if_match: str | None,
) -> AuditorRead:
    """Change the auditor (loaded, locked and in the principal's scope)."""
    auditor_id: int = auditor.id  # type: ignore[assignment]
    check_if_match(if_match, auditor.version)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        raise field_error("body", "Name at least one field to change.", "empty_update")
    status = changes.get("status", auditor.status)
    if "status_changed_on" in changes and status == auditor.status:
        raise field_error(
            "body.status_changed_on",
            "status_changed_on dates a change of status; name the new status.",
            "orphan",
        )
    ended = None
    if status != auditor.status:
        day = changes.setdefault("status_changed_on", rules.today())
        _not_in_future(day, "body.status_changed_on")
        allowed = AUDITOR_STATUS_MOVES[AuditorStatus(auditor.status)]
        if status not in allowed:
            raise InvalidTransition(
                f"A {auditor.status} auditor cannot become {status}.", allowed=sorted(allowed)
            )
        if status == AuditorStatus.REGISTERED:
            _refuse_if_barred(auditor, day)
        if status == AuditorStatus.REVOKED:
            ended = await _end_current_affiliation(session, auditor_id, day)
    await repo.update_auditor(session, auditor_id, changes)
    record = data.model_dump(exclude_unset=True, mode="json")
    if "status_changed_on" in changes:
        record["status_changed_on"] = str(changes["status_changed_on"])
    if ended is not None:
        record["ended_affiliation_id"] = ended
    await audit.record(session, principal, "auditor.updated", "auditor", auditor_id, record)
    session.expire_all()
    return await read_auditor(session, auditor_id)


async def _end_current_affiliation(session: AsyncSession, auditor_id: int, day: date) -> int | None:
    """A revoked auditor stops practising: the open affiliation ends on the day of revocation."""
    current = await repo.current_affiliation(session, auditor_id)
    if current is None:
        return None
    await repo.end_affiliation(session, current.id, max(day, current.started_on))  # type: ignore[arg-type]
    return current.id


async def list_affiliations(
    session: AsyncSession, auditor_id: int, cursor: str | None, limit: int
) -> tuple[list[AffiliationRead], str | None]:
    if await repo.get_auditor(session, auditor_id) is None:
        raise NotFound(f"Auditor {auditor_id} not found.")
    after = decode_cursor(cursor, int)
    rows = await repo.list_affiliations(session, auditor_id, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [AffiliationRead.model_validate(r) for r in page], next_cursor


async def affiliate_auditor(
    session: AsyncSession, audit: AuditLog, principal: Principal, auditor: Auditor, data: AffiliationCreate
) -> tuple[AffiliationRead, int]:
    """The auditor starts practising in a body; the affiliation and the auditor's new version.

    One open affiliation per auditor: checked here, and held by the partial unique index
    ``uq_auditor_affiliation_current`` when two requests race (the app maps its violation
    to the same 409).
    """
    auditor_id: int = auditor.id  # type: ignore[assignment]
    _not_in_future(data.started_on, "body.started_on")
    _refuse_if_barred(auditor, rules.today())
    if auditor.status != AuditorStatus.REGISTERED:
        raise Conflict(
            f"Auditor {auditor_id} is {auditor.status}: only a registered auditor practises.",
            slug="auditor-not-registered",
        )
    body = await repo.get_body(session, data.body_id)
    if body is None:
        raise field_error("body.body_id", f"No certification body {data.body_id}.", "reference")
    if body.status != BodyStatus.APPROVED:
        raise Conflict(
            f"Certification body {data.body_id} is {body.status}: it takes no personnel.",
            slug="body-not-approved",
        )
    current = await repo.current_affiliation(session, auditor_id)
    if current is not None:
        raise Conflict(
            f"Auditor {auditor_id} practises in body {current.body_id} since {current.started_on};"
            " end that affiliation first (one body at a time).",
            slug="auditor-already-affiliated",
            current_affiliation_id=current.id,
            current_body_id=current.body_id,
        )
    last_end = await repo.last_ended_on(session, auditor_id)
    if last_end is not None and data.started_on <= last_end:
        raise Conflict(
            f"Auditor {auditor_id} practised elsewhere until {last_end}; a new affiliation starts after it.",
            slug="affiliation-overlaps",
        )
    affiliation = await repo.add(session, AuditorAffiliation(auditor_id=auditor_id, **data.model_dump()))
    version = await repo.update_auditor(session, auditor_id, {})
    await audit.record(
        session,
        principal,
        "auditor.affiliated",
        "auditor",
        auditor_id,
        {"affiliation_id": affiliation.id, **data.model_dump(mode="json")},
    )
    return AffiliationRead.model_validate(affiliation, from_attributes=True), version


async def end_affiliation(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    auditor: Auditor,
    affiliation_id: int,
    data: AffiliationEnd,
) -> tuple[AffiliationRead, int]:
    auditor_id: int = auditor.id  # type: ignore[assignment]
    affiliation = await repo.get_affiliation(session, affiliation_id, for_update=True)
    if affiliation is None or affiliation.auditor_id != auditor_id:
        raise NotFound(f"Affiliation {affiliation_id} not found.")
    if affiliation.ended_on is not None:
        raise Conflict(
            f"Affiliation {affiliation_id} ended on {affiliation.ended_on}.", slug="affiliation-ended"
        )
    _not_in_future(data.ended_on, "body.ended_on")
    if data.ended_on < affiliation.started_on:
        raise field_error(
            "body.ended_on",
            f"The affiliation started on {affiliation.started_on}; it cannot end before.",
            "date_order",
        )
    await repo.end_affiliation(session, affiliation_id, data.ended_on)
    version = await repo.update_auditor(session, auditor_id, {})
    await audit.record(
        session,
        principal,
        "auditor.affiliation_ended",
        "auditor",
        auditor_id,
        {"affiliation_id": affiliation_id, **data.model_dump(mode="json")},
    )
    session.expire_all()
    ended = await repo.get_affiliation(session, affiliation_id)
    return AffiliationRead.model_validate(ended, from_attributes=True), version


# --- certification activities ---------------------------------------------------


async def read_activity(session: AsyncSession, activity_id: int) -> ActivityRead:
    row = await repo.activity_row(session, activity_id)
    if row is None:
        raise NotFound(f"Certification activity {activity_id} not found.")
    return ActivityRead.model_validate(row)


async def list_activities(
    session: AsyncSession, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[ActivityRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_activity_rows(session, filters, after[0] if after else None, limit + 1)
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [ActivityRead.model_validate(r) for r in page], next_cursor


async def _check_certificate(session: AsyncSession, data: ActivityCreate) -> None:
    if data.certificate_id is None:
        if data.kind in CERTIFICATE_KINDS:
            raise field_error(
                "body.certificate_id", f"A {data.kind} activity names the certificate it concerns.", "missing"
            )
        return
    certificate = await repo.certificate_facts(session, data.certificate_id)
    if certificate is None:
        raise field_error("body.certificate_id", f"No certificate {data.certificate_id}.", "reference")
    if certificate["body_id"] != data.body_id or certificate["holder_id"] != data.holder_id:
        raise Conflict(
            f"Certificate {data.certificate_id} was issued by body {certificate['body_id']} to enterprise"
            f" {certificate['holder_id']}, not by {data.body_id} to {data.holder_id}.",
            slug="activity-certificate-mismatch",
        )
    if data.kind == ActivityKind.SURVEILLANCE and certificate["status"] not in SURVEILLED_STATES:
        raise Conflict(
            f"Certificate {data.certificate_id} is {certificate['status']}: nothing is left to surveil.",
            slug="certificate-not-active",
        )


async def _check_auditors(session: AsyncSession, data: ActivityCreate) -> None:
    if not data.auditor_ids:
        return
    missing = sorted(set(data.auditor_ids) - await repo.existing_auditor_ids(session, data.auditor_ids))
    if missing:
        raise field_error(
            "body.auditor_ids", f"No auditor {', '.join(map(str, missing))} in the registry.", "reference"
        )
    practising = await repo.affiliated_on(session, data.body_id, data.auditor_ids, data.performed_on)
    outside = [a for a in data.auditor_ids if a not in practising]
    if outside:
        raise Conflict(
            f"Auditor {', '.join(map(str, outside))} did not practise in body {data.body_id}"
            f" on {data.performed_on}.",
            slug="auditor-not-affiliated",
            auditor_ids=outside,
        )


async def record_activity(
    session: AsyncSession, audit: AuditLog, principal: Principal, data: ActivityCreate
) -> ActivityRead:
    bureau = await keeping_bureau(session, principal, data.bureau_id)
    _not_in_future(data.performed_on, "body.performed_on")
    if data.result not in ACTIVITY_RESULTS[data.kind]:
        allowed = ", ".join(sorted(ACTIVITY_RESULTS[data.kind]))
        raise field_error(
            "body.result", f"A {data.kind} has one of the results: {allowed}.", "activity_result"
        )
    if await repo.get_body(session, data.body_id) is None:
        raise field_error("body.body_id", f"No certification body {data.body_id}.", "reference")
    await active_holder(session, data.holder_id)
    await _check_certificate(session, data)
    await _check_auditors(session, data)
    activity = await repo.add(
        session,
        CertificationActivity(
            **data.model_dump(exclude={"bureau_id"}),
            bureau_id=bureau.id,
            bureau_path=bureau.path,
            recorded_by=principal.account_id,
        ),
    )
    await audit.record(
        session,
        principal,
        "certification_activity.recorded",
        "certification_activity",
        activity.id,
        {**data.model_dump(mode="json"), "bureau_id": bureau.id},
    )
    if data.kind == ActivityKind.SURVEILLANCE and data.certificate_id is not None:
        version = await repo.record_surveillance(session, data.certificate_id, data.performed_on)
        if version is not None:
            await audit.record(
                session,
                principal,
                "certificate.surveilled",
                "certificate",
                data.certificate_id,
                {
                    "last_surveillance_on": str(data.performed_on),
                    "activity_id": activity.id,
                    "version": version,
                },
            )
    return await read_activity(session, activity.id)  # type: ignore[arg-type]


async def read_affiliation(session: AsyncSession, auditor_id: int, affiliation_id: int) -> AffiliationRead:
    affiliation = await repo.get_affiliation(session, affiliation_id)
    if affiliation is None or affiliation.auditor_id != auditor_id:
        raise NotFound(f"Affiliation {affiliation_id} not found.")
    return AffiliationRead.model_validate(affiliation, from_attributes=True)

"""Alerts (read and acknowledged within scope) and supervision notices (执法监督通知书)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, Role
from services.common.client import ServiceClient
from services.common.concurrency import check_if_match
from services.common.dates import add_working_days, today
from services.common.db import utcnow
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, NotFound, UnprocessableEntity
from services.common.transitions import Transition, TransitionTable
from services.statistics import deadlines
from services.statistics.oversight import repository as repo
from services.statistics.oversight.models import Alert, NoticeState, SupervisionNotice
from services.statistics.oversight.schemas import (
    AlertAcknowledgement,
    AlertRead,
    NoticeAnswer,
    NoticeCreate,
    NoticeObjection,
    NoticeRead,
    ObjectionReply,
)

REGISTRY = "/api/v1/registry"
ENFORCEMENT = "/api/v1/enforcement"

# --- alerts --------------------------------------------------------------------


def alert_read(alert: Alert) -> AlertRead:
    return AlertRead.model_validate(alert, from_attributes=True)


async def list_alerts(
    session: AsyncSession,
    principal: Principal,
    filters: dict[str, Any],
    acknowledged: bool | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[AlertRead], str | None]:
    before = decode_cursor(cursor, int)
    rows = await repo.list_alerts(
        session,
        within_path=principal.bureau_path,
        filters=filters,
        acknowledged=acknowledged,
        before_id=before[0] if before else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r.id])
    return [alert_read(r) for r in page], next_cursor


async def acknowledge_alert(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    alert: Alert,
    data: AlertAcknowledgement,
    if_match: str | None,
) -> Alert:
    check_if_match(if_match, alert.version)
    if alert.acknowledged_at is not None:
        raise Conflict(
            f"Alert {alert.id} was acknowledged by {alert.acknowledged_by} at "
            f"{alert.acknowledged_at.isoformat()}.",
            slug="alert-already-acknowledged",
        )
    alert.acknowledged_at = utcnow()
    alert.acknowledged_by = principal.account_id
    alert.acknowledgement = data.note
    alert.version += 1
    session.add(alert)
    await audit.record(
        session, principal, "acknowledge", "alert", alert.id, {"note": data.note, "key": alert.key}
    )
    await session.flush()
    return alert


# --- supervision notices -----------------------------------------------------------

# The sender replies to an objection within 10 working days of it (data/deadline-rules.csv,
# the note of supervision_notice_objection).
REPLY_WORKING_DAYS = 10

# The receiving bureau's legal-affairs body or head answers or objects; the sender's
# legal-affairs body replies to an objection.
RECEIVER_ROLES = frozenset({Role.LEGAL, Role.HEAD})
SENDER_ROLES = frozenset({Role.LEGAL})
NOTICE_STEPS: TransitionTable[NoticeState] = TransitionTable(
    "supervision notice",
    [
        Transition(
            "answer",
            frozenset({NoticeState.SENT, NoticeState.OBJECTED}),
            NoticeState.ANSWERED,
            roles=RECEIVER_ROLES,
            records=("answer",),
        ),
        Transition(
            "object",
            frozenset({NoticeState.SENT}),
            NoticeState.OBJECTED,
            roles=RECEIVER_ROLES,
            records=("objection",),
        ),
        Transition(
            "uphold_objection",
            frozenset({NoticeState.OBJECTED}),
            NoticeState.WITHDRAWN,
            roles=SENDER_ROLES,
            records=("reply",),
        ),
        Transition(
            "dismiss_objection",
            frozenset({NoticeState.OBJECTED}),
            NoticeState.SENT,
            roles=SENDER_ROLES,
            records=("reply",),
        ),
    ],
)


def notice_read(notice: SupervisionNotice) -> NoticeRead:
    return NoticeRead.model_validate(notice, from_attributes=True)


async def _bureau_path(services: ServiceClient, bureau_id: int) -> str:
    try:
        bureau = await services.get(f"{REGISTRY}/bureaus/{bureau_id}")
    except NotFound:
        raise NotFound(f"Bureau {bureau_id} not found.") from None
    return str(bureau["path"])


async def _check_case(services: ServiceClient, case_id: int, bureau_id: int, bureau_path: str) -> None:
    """The case exists and is handled in the receiving bureau's subtree (422 otherwise)."""
    refused = UnprocessableEntity(
        f"Case {case_id} is not a case of bureau {bureau_id} or of a bureau under it.",
        errors=[
            {"loc": "body.case_id", "message": "not a case of the receiving bureau", "type": "case_not_found"}
        ],
    )
    try:
        case = await services.get(f"{ENFORCEMENT}/cases/{case_id}")
    except NotFound:
        raise refused from None
    if case["bureau_id"] != bureau_id and not (await _bureau_path(services, case["bureau_id"])).startswith(
        bureau_path
    ):
        raise refused


async def send_notice(
    session: AsyncSession,
    audit: AuditLog,
    services: ServiceClient,
    principal: Principal,
    data: NoticeCreate,
) -> SupervisionNotice:
    if data.to_bureau_id == principal.bureau_id:
        raise Conflict(
            "A supervision notice goes to a bureau below the sender's, never to its own bureau.",
            slug="notice-to-own-bureau",
        )
    if data.subject_type == "case" and data.case_id is None:
        raise UnprocessableEntity(
            "A notice about a case names the case.",
            errors=[
                {"loc": "body.case_id", "message": "required when subject_type is case", "type": "missing"}
            ],
        )
    if data.subject_type == "matter" and data.case_id is not None:
        raise UnprocessableEntity(
            "A notice about a matter names no case.",
            errors=[{"loc": "body.case_id", "message": "only for subject_type case", "type": "extra"}],
        )
    path = await _bureau_path(services, data.to_bureau_id)
    if not principal.in_scope(path):  # outside the sender's subtree: the same 404 as missing
        raise NotFound(f"Bureau {data.to_bureau_id} not found.")
    if data.case_id is not None:
        await _check_case(services, data.case_id, data.to_bureau_id, path)
    sent_on = data.sent_on or today()
    received_on = data.received_on or sent_on
    if received_on < sent_on:
        raise UnprocessableEntity(
            "A notice is received on or after the day it was sent.",
            errors=[{"loc": "body.received_on", "message": "before sent_on", "type": "date_order"}],
        )
    notice = SupervisionNotice(
        number=data.number,
        from_bureau_id=principal.bureau_id,
        from_bureau_path=principal.bureau_path,
        bureau_id=data.to_bureau_id,
        bureau_path=path,
        subject_type=data.subject_type,
        case_id=data.case_id,
        matter=data.matter,
        requirements=data.requirements,
        sent_on=sent_on,
        received_on=received_on,
        answer_due=deadlines.due("supervision_notice_answer", received_on),
        objection_due=deadlines.due("supervision_notice_objection", received_on),
        state=NoticeState.SENT,
        sent_by=principal.account_id,
    )
    session.add(notice)
    await session.flush()
    await audit.record(
        session,
        principal,
        "send",
        "supervision_notice",
        notice.id,
        {"to_bureau_id": notice.bureau_id, "case_id": notice.case_id, "received_on": received_on},
    )
    return notice


async def list_notices(
    session: AsyncSession, principal: Principal, filters: dict[str, Any], cursor: str | None, limit: int
) -> tuple[list[NoticeRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_notices(
        session,
        within_path=principal.bureau_path,
        filters=filters,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r.id])
    return [notice_read(r) for r in page], next_cursor


def _must_be(principal: Principal, bureau_id: int, who: str) -> None:
    if principal.bureau_id != bureau_id:
        raise Forbidden(
            f"Only the {who} bureau ({bureau_id}) takes this step of a supervision notice.",
            slug=f"not-the-{who}-bureau",
        )


async def _step(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    notice: SupervisionNotice,
    step: str,
    given: dict[str, Any],
    if_match: str | None,
) -> Transition[NoticeState]:
    check_if_match(if_match, notice.version)
    transition = NOTICE_STEPS.resolve(NoticeState(notice.state), step, principal)
    NOTICE_STEPS.check_records(transition, given)
    notice.state = transition.target
    notice.version += 1
    notice.updated_at = utcnow()
    session.add(notice)
    await audit.record(session, principal, step, "supervision_notice", notice.id, given)
    return transition


async def answer_notice(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    notice: SupervisionNotice,
    data: NoticeAnswer,
    if_match: str | None,
) -> SupervisionNotice:
    check_if_match(if_match, notice.version)
    _must_be(principal, notice.bureau_id, "receiving")
    on = today()
    await _step(session, audit, principal, notice, "answer", data.model_dump(), if_match)
    notice.answer = data.answer
    notice.answered_on = on
    notice.answered_by = principal.account_id
    notice.answered_late = on > notice.answer_due
    await session.flush()
    return notice


async def object_to_notice(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    notice: SupervisionNotice,
    data: NoticeObjection,
    if_match: str | None,
) -> SupervisionNotice:
    check_if_match(if_match, notice.version)
    _must_be(principal, notice.bureau_id, "receiving")
    NOTICE_STEPS.resolve(NoticeState(notice.state), "object", principal)
    on = today()
    if on > notice.objection_due:
        raise Conflict(
            f"The objection window closed on {notice.objection_due} (5 working days after receipt on "
            f"{notice.received_on}); the answer is due by {notice.answer_due}.",
            slug="objection-window-closed",
            objection_due=notice.objection_due.isoformat(),
        )
    await _step(session, audit, principal, notice, "object", data.model_dump(), if_match)
    notice.objection = data.objection
    notice.objected_on = on
    notice.objected_by = principal.account_id
    notice.reply_due = add_working_days(on, REPLY_WORKING_DAYS)
    await session.flush()
    return notice


async def reply_to_objection(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    notice: SupervisionNotice,
    data: ObjectionReply,
    if_match: str | None,
) -> SupervisionNotice:
    check_if_match(if_match, notice.version)
    _must_be(principal, notice.from_bureau_id, "sending")
    step = "uphold_objection" if data.outcome == "upheld" else "dismiss_objection"
    await _step(session, audit, principal, notice, step, data.model_dump(), if_match)
    notice.objection_reply = data.reply
    notice.reply_outcome = data.outcome
    notice.replied_on = today()
    notice.replied_by = principal.account_id
    await session.flush()
    return notice

"""Alerts and supervision notices HTTP API: thin handlers that parse, authorize, call the service,
respond.

Who may do what (within the caller's subtree; another bureau's alert or notice answers the same
404 as a missing one):

* alerts: read and acknowledged by the legal-affairs body (法制工作机构), the bureau head and the
  administrator — those who answer for the deadlines the alerts are about;
* supervision notices: read by the same roles; sent by the legal-affairs body to a bureau below
  its own; answered or objected to by the receiving bureau's legal-affairs body or head; an
  objection is replied to by the sending bureau's legal-affairs body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.common.auth import Role
from services.common.concurrency import etag
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.types import IdQuery
from services.statistics.deps import (
    AuditDep,
    Authorize,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    scoped_loader,
)
from services.statistics.oversight import repository as repo
from services.statistics.oversight import service
from services.statistics.oversight.models import Alert, NoticeState, SupervisionNotice
from services.statistics.oversight.schemas import (
    AlertAcknowledgement,
    AlertRead,
    NoticeAnswer,
    NoticeCreate,
    NoticeObjection,
    NoticeRead,
    ObjectionReply,
    Severity,
)

PREFIX = "/api/v1/statistics"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]

READERS = (Role.LEGAL, Role.HEAD, Role.ADMIN)
STEP_TAKERS = (Role.LEGAL, Role.HEAD)
Reader = Authorize(*READERS)
NoticeSender = Authorize(Role.LEGAL)

AlertToRead = Annotated[
    Alert, Depends(scoped_loader(repo.get_alert, noun="alert", roles=READERS, read_only=True))
]
AlertForUpdate = Annotated[Alert, Depends(scoped_loader(repo.lock_alert, noun="alert", roles=READERS))]
NoticeToRead = Annotated[
    SupervisionNotice,
    Depends(
        scoped_loader(
            repo.get_notice, noun="supervision notice", param="notice_id", roles=READERS, read_only=True
        )
    ),
]
NoticeForUpdate = Annotated[
    SupervisionNotice,
    Depends(scoped_loader(repo.lock_notice, noun="supervision notice", param="notice_id", roles=STEP_TAKERS)),
]


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


# --- alerts --------------------------------------------------------------------


@router.get(
    "/alerts",
    response_model=Page[AlertRead],
    tags=["oversight"],
    operation_id="list_alerts",
    summary="List the oversight alerts of the principal's subtree",
    description=(
        "Oversight alerts (执法监督预警) of the principal's bureau and the bureaus under it, newest "
        "first: leads and cases near or past a deadline, cases without two officers, supervision "
        "notices not answered in time, and the other domains' (late filings, late reports). Filter by "
        "`kind`, `severity`, `acknowledged` and the alert's `bureau_id`. Roles: legal, head, admin."
    ),
    responses=problem_responses(403),
)
async def list_alerts(
    session: ReadSessionDep,
    principal: Reader,
    page: PageDep,
    kind: Annotated[str | None, Query(min_length=1, max_length=48, pattern=r"^[a-z][a-z0-9_]*$")] = None,
    severity: Severity | None = None,
    acknowledged: bool | None = None,
    bureau_id: IdQuery = None,
) -> Page[AlertRead]:
    filters = {"kind": kind, "severity": severity, "bureau_id": bureau_id}
    items, next_cursor = await service.list_alerts(
        session, principal, filters, acknowledged, page.cursor, page.limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/alerts/{alert_id}",
    response_model=AlertRead,
    tags=["oversight"],
    operation_id="get_alert",
    summary="Read one alert",
    description="One oversight alert (执法监督预警), with its ETag for the acknowledgement.",
    responses=problem_responses(403, 404),
)
async def get_alert(alert: AlertToRead, response: Response) -> AlertRead:
    _etag(response, alert.version)
    return service.alert_read(alert)


@router.post(
    "/alerts/{alert_id}/acknowledgement",
    response_model=AlertRead,
    tags=["oversight"],
    operation_id="acknowledge_alert",
    summary="Acknowledge an alert, with a note (If-Match required)",
    description=(
        "Acknowledges an oversight alert (执法监督预警) once, with a note of what was done about it. "
        "A second acknowledgement is a 409 `/problems/alert-already-acknowledged`; the detectors never "
        "raise the same alert again (a later deadline raises a new one). Roles: legal, head, admin."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def acknowledge_alert(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    alert: AlertForUpdate,
    data: AlertAcknowledgement,
    response: Response,
    if_match: IfMatchDep = None,
) -> AlertRead:
    alert = await service.acknowledge_alert(session, audit, principal, alert, data, if_match)
    await session.commit()
    _etag(response, alert.version)
    return service.alert_read(alert)


# --- supervision notices -----------------------------------------------------------


@router.post(
    "/supervision-notices",
    response_model=NoticeRead,
    status_code=status.HTTP_201_CREATED,
    tags=["supervision notices"],
    operation_id="send_supervision_notice",
    summary="Send a supervision notice to a bureau below",
    description=(
        "The legal-affairs body sends a supervision notice (执法监督通知书) about a case or a matter to a "
        "bureau of its subtree below its own (its own bureau: 409 `/problems/notice-to-own-bureau`; a "
        "bureau outside its subtree: 404 as a missing one; a case not of the receiving bureau's "
        "subtree: 422). The receiving bureau answers within 10 working days of receipt and may "
        "object within 5 (`answer_due`, `objection_due`)."
    ),
    responses=problem_responses(403, 404, 409),
)
async def send_notice(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: NoticeSender,
    data: NoticeCreate,
    response: Response,
) -> NoticeRead:
    notice = await service.send_notice(session, audit, request.app.state.services, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/supervision-notices/{notice.id}"
    _etag(response, notice.version)
    return service.notice_read(notice)


@router.get(
    "/supervision-notices",
    response_model=Page[NoticeRead],
    tags=["supervision notices"],
    operation_id="list_supervision_notices",
    summary="List the supervision notices of the principal's subtree",
    description=(
        "Supervision notices (执法监督通知书) received by the principal's bureau or the bureaus under "
        "it (so a sender sees those it sent), oldest first. Filter by `state`, the receiving "
        "`bureau_id` and the sending `from_bureau_id`. Roles: legal, head, admin."
    ),
    responses=problem_responses(403),
)
async def list_notices(
    session: ReadSessionDep,
    principal: Reader,
    page: PageDep,
    state: NoticeState | None = None,
    bureau_id: IdQuery = None,
    from_bureau_id: IdQuery = None,
) -> Page[NoticeRead]:
    filters = {"state": state, "bureau_id": bureau_id, "from_bureau_id": from_bureau_id}
    items, next_cursor = await service.list_notices(session, principal, filters, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/supervision-notices/{notice_id}",
    response_model=NoticeRead,
    tags=["supervision notices"],
    operation_id="get_supervision_notice",
    summary="Read one supervision notice",
    description=(
        "One supervision notice (执法监督通知书) with its windows, answer and objection, and its ETag."
    ),
    responses=problem_responses(403, 404),
)
async def get_notice(notice: NoticeToRead, response: Response) -> NoticeRead:
    _etag(response, notice.version)
    return service.notice_read(notice)


@router.post(
    "/supervision-notices/{notice_id}/answer",
    response_model=NoticeRead,
    tags=["supervision notices"],
    operation_id="answer_supervision_notice",
    summary="Answer a supervision notice (If-Match required)",
    description=(
        "The receiving bureau's legal-affairs body or head answers the supervision notice "
        "(执法监督通知书); an answer after `answer_due` is recorded as late (`answered_late`), and an "
        "unanswered notice past it raises an alert. Another bureau: 403 "
        "`/problems/not-the-receiving-bureau`."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def answer_notice(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    notice: NoticeForUpdate,
    data: NoticeAnswer,
    response: Response,
    if_match: IfMatchDep = None,
) -> NoticeRead:
    notice = await service.answer_notice(session, audit, principal, notice, data, if_match)
    await session.commit()
    _etag(response, notice.version)
    return service.notice_read(notice)


@router.post(
    "/supervision-notices/{notice_id}/objection",
    response_model=NoticeRead,
    tags=["supervision notices"],
    operation_id="object_to_supervision_notice",
    summary="Object to a supervision notice within 5 working days (If-Match required)",
    description=(
        "The receiving bureau objects to the supervision notice (执法监督通知书) by `objection_due` (5 "
        "working days after receipt); later: 409 `/problems/objection-window-closed`. The sender "
        "replies with `objection-reply`."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def object_to_notice(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    notice: NoticeForUpdate,
    data: NoticeObjection,
    response: Response,
    if_match: IfMatchDep = None,
) -> NoticeRead:
    notice = await service.object_to_notice(session, audit, principal, notice, data, if_match)
    await session.commit()
    _etag(response, notice.version)
    return service.notice_read(notice)


@router.post(
    "/supervision-notices/{notice_id}/objection-reply",
    response_model=NoticeRead,
    tags=["supervision notices"],
    operation_id="reply_to_notice_objection",
    summary="Reply to an objection to a supervision notice (If-Match required)",
    description=(
        "The sending bureau's legal-affairs body replies to the objection to its supervision notice "
        "(执法监督通知书): `upheld` withdraws the notice, `dismissed` keeps it (the answer is still owed "
        "by `answer_due`). Another bureau: 403 `/problems/not-the-sending-bureau`."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def reply_to_objection(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    notice: NoticeForUpdate,
    data: ObjectionReply,
    response: Response,
    if_match: IfMatchDep = None,
) -> NoticeRead:
    notice = await service.reply_to_objection(session, audit, principal, notice, data, if_match)
    await session.commit()
    _etag(response, notice.version)
    return service.notice_read(notice)

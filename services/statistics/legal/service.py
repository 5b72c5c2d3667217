"""The legal-affairs body's rules: the review queue (法制审核 / 案件审核) and the major-case
filings (重大案件备案), and the deadlines watched over both. Never commits."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.client import ServiceClient
from services.common.concurrency import check_if_match
from services.common.dates import today
from services.common.db import utcnow
from services.common.event_schemas import CaseChanged, FilingAnswered, ReviewAnswered, ReviewRequested
from services.common.events import Event
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, Forbidden, UnprocessableEntity
from services.statistics import deadlines
from services.statistics.facts.service import set_case_filing
from services.statistics.legal import repository as repo
from services.statistics.legal.enforcement import check_correction
from services.statistics.legal.models import Filing, FilingState, Review, ReviewOpinion, ReviewState
from services.statistics.legal.registry import reviewer_standing
from services.statistics.legal.schemas import (
    FilingAnswerIn,
    FilingRead,
    FilingSubmission,
    ReviewOpinionIn,
    ReviewRead,
)
from services.statistics.models import OUTBOX
from services.statistics.oversight.alerts import raise_alert

REVIEW_ANSWERED = "statistics.review.answered"
FILING_ANSWERED = "statistics.filing.answered"
# A deadline this close (calendar days, the due day included) is near: alerted before it passes.
NEAR_DAYS = 3
# States of a case that has closed (结案) or gone past it: its filing is then owed.
CLOSED_STATES = frozenset({"closed", "archived", "published"})


async def _save(session: AsyncSession, row: Review | Filing) -> None:
    """The changed review or filing written, its version one up (what ``If-Match`` names next)."""
    row.version += 1
    session.add(row)
    await session.flush()


def _not_before(on: date, earliest: date, field: str, what: str, because: str) -> None:
    """The day ``on`` (the body's ``field``) is not before ``earliest``, or 422 ``date_order``:
    "<what> cannot be dated <on>: <because> <earliest>"."""
    if on < earliest:
        raise UnprocessableEntity(
            f"{what} cannot be dated {on}: {because} {earliest}.",
            errors=[
                {"loc": f"body.{field}", "message": f"must not be before {earliest}", "type": "date_order"}
            ],
        )


async def _alert(
    session: AsyncSession,
    subject_type: str,
    row: Review | Filing,
    *,
    kind: str,
    condition: str,
    severity: str,
    message: str,
    details: dict[str, Any],
) -> bool:
    """The deadline alert of a review or filing, raised once per row and condition (key
    ``<kind>:<subject_type>:<id>:<condition>:<due>``), in the row's (the case's) bureau."""
    return await raise_alert(
        session,
        key=f"{kind}:{subject_type}:{row.id}:{condition}:{row.due}",
        kind=kind,
        severity=severity,
        subject_type=subject_type,
        subject_id=row.id,  # type: ignore[arg-type]
        bureau_id=row.bureau_id,
        bureau_path=row.bureau_path,
        due=row.due,
        message=message,
        details=details,
    )


# --- reviews ---------------------------------------------------------------------


async def open_review(
    session: AsyncSession, audit: AuditLog, event: Event, request: ReviewRequested
) -> Review | None:
    """A review round for the request, unless the case's review is still pending (the same request
    again, or a duplicate under another event id): the new round, or None."""
    if not event.bureau_path or event.bureau_id is None:
        raise UnprocessableEntity("A review request names the case's bureau.")
    values: dict[str, Any] = {
        "event_id": event.id,
        "case_id": request.case_id,
        "case_version": event.aggregate_version,
        "number": request.number,
        "review_kind": request.review_kind,
        "bureau_id": event.bureau_id,
        "bureau_path": event.bureau_path,
        "requested_on": request.requested_on,
        "due": deadlines.due("review", request.requested_on),
        "officer_ids": sorted(set(request.officer_ids)),
        "categories": list(request.categories),
        "state": ReviewState.PENDING.value,
        "version": 1,
        "created_at": utcnow(),
    }
    review = await repo.open_review(session, values)
    if review is not None:
        await audit.record(
            session,
            None,
            "review.requested",
            "review",
            review.id,
            {"case_id": review.case_id, "round": review.round, "event_id": str(event.id)},
        )
    return review


def review_read(review: Review, on: date | None = None) -> ReviewRead:
    on = on or today()
    return ReviewRead(
        id=review.id,  # type: ignore[arg-type]
        version=review.version,
        case_id=review.case_id,
        number=review.number,
        round=review.round,
        review_kind=review.review_kind,
        bureau_id=review.bureau_id,
        bureau_path=review.bureau_path,
        requested_on=review.requested_on,
        due=review.due,
        overdue=review.state == ReviewState.PENDING and review.due < on,
        officer_ids=list(review.officer_ids),
        categories=list(review.categories),
        state=review.state,  # type: ignore[arg-type]
        opinion=review.opinion,
        reason=review.reason,
        correction=review.correction,
        answered_on=review.answered_on,
        answered_at=review.answered_at,
        reviewer_officer_id=review.reviewer_officer_id,
        reviewer_name=review.reviewer_name,
        reviewer_post_id=review.reviewer_post_id,
    )


async def list_reviews(
    session: AsyncSession,
    principal: Principal,
    *,
    state: str | None,
    overdue: bool | None,
    bureau_id: int | None,
    case_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReviewRead], str | None]:
    after = decode_cursor(cursor, int)
    on = today()
    rows = await repo.list_reviews(
        session,
        within_path=principal.bureau_path,
        state=state,
        overdue_on=on if overdue else None,
        not_overdue_on=on if overdue is False else None,
        bureau_id=bureau_id,
        case_id=case_id,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r.id])
    return [review_read(r, on) for r in page], next_cursor


async def answer_review(
    session: AsyncSession,
    audit: AuditLog,
    services: ServiceClient,
    principal: Principal,
    review: Review,
    data: ReviewOpinionIn,
    if_match: str | None,
) -> Review:
    """The reviewer's opinion, sent to enforcement as ``statistics.review.answered`` in the same
    transaction: its event takes the case's review step (agree, correct, or return). The reviewer
    is never an officer of the case, and holds a post whose duties list that step (执法责任制)."""
    check_if_match(if_match, review.version)
    if principal.officer_id is None:
        raise Forbidden(
            "A review is answered by an officer of the legal-affairs body.", slug="officer-required"
        )
    if principal.officer_id in review.officer_ids:
        raise Forbidden(
            "An officer of the case never reviews it (separation of duties).", slug="reviewer-is-case-officer"
        )
    if review.state == ReviewState.WITHDRAWN:
        raise Conflict(f"Review {review.id} was withdrawn: {review.reason}", slug="review-withdrawn")
    if review.state != ReviewState.PENDING:
        raise Conflict(
            f"Review {review.id} was answered on {review.answered_on} ({review.opinion}).",
            slug="review-already-answered",
        )
    correcting = data.opinion == ReviewOpinion.CORRECT
    if correcting and not data.penalties:
        raise UnprocessableEntity(
            "A correction names the sanctions as corrected.",
            errors=[{"loc": "body.penalties", "message": "required for correct", "type": "missing"}],
        )
    extra = [
        name
        for name in ("penalties", "violation_code", "violation_regulation")
        if not correcting and getattr(data, name) is not None
    ]
    if extra:
        raise UnprocessableEntity(
            f"Only a correction names {', '.join(extra)}.",
            errors=[
                {"loc": f"body.{name}", "message": "only for correct", "type": "extra"} for name in extra
            ],
        )
    standing = await reviewer_standing(services, principal.officer_id, data.opinion)
    if correcting:
        await check_correction(services, review.case_id, data)
    on = data.answered_on or today()
    _not_before(on, review.requested_on, "answered_on", "The opinion", "the review was requested on")
    correction = None
    if correcting:
        correction = {
            "penalties": [p.model_dump(mode="json", exclude_none=True) for p in data.penalties or []],
            **({"violation_code": data.violation_code} if data.violation_code else {}),
            **({"violation_regulation": data.violation_regulation} if data.violation_regulation else {}),
        }
    review.state = ReviewState.ANSWERED
    review.opinion = data.opinion
    review.reason = data.reason
    review.correction = correction
    review.answered_on = on
    review.answered_at = utcnow()
    review.reviewer_account_id = principal.account_id
    review.reviewer_officer_id = principal.officer_id
    review.reviewer_name = standing.name
    review.reviewer_post_id = standing.post.id if standing.post else None
    await _save(session, review)
    await OUTBOX.emit(
        session,
        REVIEW_ANSWERED,
        aggregate_type="review",
        aggregate_id=review.id,  # type: ignore[arg-type]
        aggregate_version=review.version,
        bureau_id=review.bureau_id,
        bureau_path=review.bureau_path,
        payload=ReviewAnswered(
            review_id=review.id,  # type: ignore[arg-type]
            case_id=review.case_id,
            outcome="returned" if data.opinion == ReviewOpinion.INVESTIGATE_FURTHER else "approved",
            reason=data.reason,
            opinion=data.opinion,
            answered_on=on,
            penalties=correction["penalties"] if correction else None,  # type: ignore[arg-type]
            violation_code=data.violation_code if correcting else None,
            violation_regulation=data.violation_regulation if correcting else None,
            reviewer_officer_id=principal.officer_id,
            reviewer_name=standing.name,
            reviewer_post_id=standing.post.id if standing.post else None,
            reviewer_post_name=standing.post.name if standing.post else None,
        ),
    )
    await audit.record(
        session, principal, "review.answered", "review", review.id, data.model_dump(mode="json")
    )
    return review


# --- filings ---------------------------------------------------------------------


def parent_of(bureau_path: str) -> tuple[int, str] | None:
    """The parent bureau's (id, path) from a tree path "1.5.23." → (5, "1.5."); None at the root."""
    ids = [part for part in bureau_path.split(".") if part]
    if len(ids) < 2:
        return None
    return int(ids[-2]), ".".join(ids[:-1]) + "."


async def on_case_changed(session: AsyncSession, event: Event, payload: CaseChanged) -> None:
    """The hook of the composed ``enforcement.case.changed`` handler: a closed case that must be
    filed (重大案件备案) gets its expected filing once, due ``major_case_filing`` days after it
    closed, with the legal-affairs body of its bureau's parent; the case fact, if there, keeps the
    filing's due day (and filing day) in step."""
    if payload.state != "under_review":
        await _withdraw_review(session, event, payload)
    if not (payload.needs_filing and payload.closed_on is not None and payload.state in CLOSED_STATES):
        return
    if not event.bureau_path or event.bureau_id is None:
        return
    parent = parent_of(event.bureau_path)
    if parent is None:  # the national regulator has no level above to file with
        return
    due = deadlines.due("major_case_filing", payload.closed_on)
    filing_id = await repo.expect_filing(
        session,
        {
            "case_id": payload.case_id,
            "number": payload.number,
            "bureau_id": event.bureau_id,
            "bureau_path": event.bureau_path,
            "receiving_bureau_id": parent[0],
            "receiving_bureau_path": parent[1],
            "closed_on": payload.closed_on,
            "due": due,
            "state": FilingState.EXPECTED.value,
            "documents": [],
            "submissions": 0,
            "version": 1,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        },
    )
    filing = await repo.filing_of_case(session, payload.case_id) if filing_id is None else None
    await set_case_filing(
        session,
        payload.case_id,
        filing_due=due if filing is None else filing.due,
        filed_on=None if filing is None else filing.filed_on,
    )


async def _withdraw_review(session: AsyncSession, event: Event, payload: CaseChanged) -> None:
    """A case that left review, unanswered, after it was handed over (terminated, transferred):
    its pending round is withdrawn, so it is neither answered nor alerted any more."""
    review = await repo.pending_review_of_case(session, payload.case_id)
    if review is None or event.aggregate_version <= review.case_version:
        return
    review.state = ReviewState.WITHDRAWN
    review.reason = f"The case became {payload.state} (version {event.aggregate_version}) before the answer."
    await _save(session, review)


def is_late(filing: Filing, on: date) -> bool:
    if filing.filed_on is not None:
        return not filing.on_time
    return filing.due < on


def filing_read(filing: Filing, on: date | None = None) -> FilingRead:
    return FilingRead(
        id=filing.id,  # type: ignore[arg-type]
        version=filing.version,
        case_id=filing.case_id,
        number=filing.number,
        bureau_id=filing.bureau_id,
        bureau_path=filing.bureau_path,
        receiving_bureau_id=filing.receiving_bureau_id,
        closed_on=filing.closed_on,
        due=filing.due,
        state=filing.state,  # type: ignore[arg-type]
        late=is_late(filing, on or today()),
        summary=filing.summary,
        documents=list(filing.documents),
        filed_on=filing.filed_on,
        on_time=filing.on_time,
        submissions=filing.submissions,
        answer=filing.answer,
        answer_reason=filing.answer_reason,
        answered_on=filing.answered_on,
    )


async def list_filings(
    session: AsyncSession,
    principal: Principal,
    *,
    state: str | None,
    late: bool | None,
    bureau_id: int | None,
    case_id: int | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[FilingRead], str | None]:
    after = decode_cursor(cursor, int)
    on = today()
    rows = await repo.list_filings(
        session,
        within_path=principal.bureau_path,
        state=state,
        late=late,
        as_of=on,
        bureau_id=bureau_id,
        case_id=case_id,
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r.id])
    return [filing_read(r, on) for r in page], next_cursor


def _check_state(filing: Filing, allowed: set[str], doing: str) -> None:
    if filing.state not in allowed:
        raise Conflict(
            f"Filing {filing.id} is {filing.state}: it cannot be {doing} now.",
            slug="filing-state",
            state=filing.state,
        )


async def submit_filing(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    filing: Filing,
    data: FilingSubmission,
    if_match: str | None,
) -> Filing:
    """The case's bureau files the case (报备) with the level above: first time, or again after
    a return. The day and timeliness recorded are those of this submission."""
    check_if_match(if_match, filing.version)
    if principal.bureau_id != filing.bureau_id:
        raise Forbidden(
            f"Filing {filing.id} is made by the case's bureau ({filing.bureau_id}).", slug="not-filing-bureau"
        )
    _check_state(filing, {FilingState.EXPECTED, FilingState.RETURNED}, "submitted")
    on = data.filed_on or today()
    _not_before(on, filing.closed_on, "filed_on", "The filing", "the case closed on")
    filing.state = FilingState.SUBMITTED
    filing.summary = data.summary
    filing.documents = [d.model_dump(mode="json", exclude_none=True) for d in data.documents]
    filing.filed_on = on
    filing.on_time = on <= filing.due
    filing.submissions += 1
    filing.submitted_by = principal.account_id
    filing.updated_at = utcnow()
    await _save(session, filing)
    await set_case_filing(session, filing.case_id, filing_due=filing.due, filed_on=on)
    await audit.record(
        session, principal, "filing.submitted", "filing", filing.id, data.model_dump(mode="json")
    )
    return filing


def receives(principal: Principal, filing: Filing) -> bool:
    """The receiving legal-affairs body (the next level up) or one above it — never the filer."""
    return principal.bureau_id != filing.bureau_id and filing.receiving_bureau_path.startswith(
        principal.bureau_path
    )


async def answer_filing(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    filing: Filing,
    data: FilingAnswerIn,
    if_match: str | None,
) -> Filing:
    """Accepted (准予备案), or returned with reasons (the bureau files again); enforcement hears
    of it through ``statistics.filing.answered``."""
    check_if_match(if_match, filing.version)
    if not receives(principal, filing):
        raise Forbidden(
            f"Filing {filing.id} is answered by the legal-affairs body of bureau "
            f"{filing.receiving_bureau_id} or one above it.",
            slug="not-receiving-bureau",
        )
    _check_state(filing, {FilingState.SUBMITTED}, "answered")
    if data.outcome == "returned" and not data.reason:
        raise UnprocessableEntity(
            "A filing is returned with its reasons.",
            errors=[{"loc": "body.reason", "message": "required when returned", "type": "missing"}],
        )
    on = data.answered_on or today()
    if filing.filed_on is not None:
        _not_before(on, filing.filed_on, "answered_on", "The answer", "the filing was made on")
    filing.state = FilingState.ACCEPTED if data.outcome == "accepted" else FilingState.RETURNED
    filing.answer = data.outcome
    filing.answer_reason = data.reason
    filing.answered_on = on
    filing.answered_by = principal.account_id
    filing.updated_at = utcnow()
    await _save(session, filing)
    await OUTBOX.emit(
        session,
        FILING_ANSWERED,
        aggregate_type="filing",
        aggregate_id=filing.id,  # type: ignore[arg-type]
        aggregate_version=filing.version,
        bureau_id=filing.bureau_id,
        bureau_path=filing.bureau_path,
        payload=FilingAnswered(
            filing_id=filing.id,  # type: ignore[arg-type]
            case_id=filing.case_id,
            outcome=data.outcome,
            reason=data.reason,
        ),
    )
    await audit.record(
        session, principal, "filing.answered", "filing", filing.id, data.model_dump(mode="json")
    )
    return filing


# --- oversight -------------------------------------------------------------------


async def review_alerts(session: AsyncSession, as_of: date) -> int:
    """Alerts for pending reviews near (within NEAR_DAYS) or past their 10-working-day deadline;
    each once per review and condition (key ``review_deadline:review:<id>:<near|past>:<due>``),
    however often it runs. Never commits. Returns how many it raised."""
    raised = 0
    for review in await repo.pending_reviews_due_by(session, as_of + timedelta(days=NEAR_DAYS)):
        past = review.due < as_of
        severity = "past" if past else "near"
        raised += await _alert(
            session,
            "review",
            review,
            kind="review_deadline",
            condition=severity,
            severity=severity,
            message=(
                f"The {review.review_kind} review of case {review.number} "
                f"{'was due' if past else 'is due'} on {review.due} and is not answered."
            ),
            details={
                "case_id": review.case_id,
                "round": review.round,
                "requested_on": str(review.requested_on),
            },
        )
    return raised


async def filing_alerts(session: AsyncSession, as_of: date) -> int:
    """Alerts for filings due soon without a standing submission (near), past due without one
    (missing), and submitted after the due day (late); once per filing and condition (key
    ``filing_deadline:filing:<id>:<near|missing>:<due>``, ``filing_late:filing:<id>:late:<due>``).
    Never commits. The bureau
    of an alert is the case's (filing) bureau, so both it and the receiving level above see it."""
    raised = 0
    for filing in await repo.filings_to_watch(session, as_of + timedelta(days=NEAR_DAYS)):
        if filing.on_time is False:
            condition, severity = "late", "past"
            message = f"Case {filing.number} was filed on {filing.filed_on}, after its due day {filing.due}."
        elif filing.state in {FilingState.EXPECTED, FilingState.RETURNED} and filing.due < as_of:
            condition, severity = "missing", "missing"
            message = f"Case {filing.number} was due to be filed by {filing.due} and is not filed."
        elif filing.state in {FilingState.EXPECTED, FilingState.RETURNED}:
            condition, severity = "near", "near"
            message = f"Case {filing.number} is due to be filed by {filing.due}."
        else:
            continue
        kind = "filing_late" if condition == "late" else "filing_deadline"
        raised += await _alert(
            session,
            "filing",
            filing,
            kind=kind,
            condition=condition,
            severity=severity,
            message=message,
            details={
                "case_id": filing.case_id,
                "receiving_bureau_id": filing.receiving_bureau_id,
                "filed_on": str(filing.filed_on) if filing.filed_on else None,
            },
        )
    return raised

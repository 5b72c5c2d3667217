"""The legal-affairs body's HTTP API: the review queue and the major-case filings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

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
from services.statistics.legal import repository as repo
from services.statistics.legal import service
from services.statistics.legal.models import Filing, FilingState, Review, ReviewState
from services.statistics.legal.schemas import (
    FilingAnswerIn,
    FilingRead,
    FilingSubmission,
    ReviewOpinionIn,
    ReviewRead,
)

PREFIX = "/api/v1/statistics"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]

LegalOfficer = Authorize(Role.LEGAL)
Filer = Authorize(Role.ENFORCEMENT, Role.HEAD, Role.LEGAL)
ReviewToRead = Annotated[Review, Depends(scoped_loader(repo.get_review, noun="review", read_only=True))]
ReviewForUpdate = Annotated[
    Review, Depends(scoped_loader(repo.lock_review, noun="review", roles=(Role.LEGAL,)))
]
FilingToRead = Annotated[Filing, Depends(scoped_loader(repo.get_filing, noun="filing", read_only=True))]
FilingToSubmit = Annotated[
    Filing,
    Depends(scoped_loader(repo.lock_filing, noun="filing", roles=(Role.ENFORCEMENT, Role.HEAD, Role.LEGAL))),
]
FilingToAnswer = Annotated[
    Filing, Depends(scoped_loader(repo.lock_filing, noun="filing", roles=(Role.LEGAL,)))
]


# --- reviews ---------------------------------------------------------------------


@router.get(
    "/reviews",
    response_model=Page[ReviewRead],
    tags=["reviews"],
    operation_id="list_reviews",
    summary="The review queue of the principal's subtree",
    description=(
        "Cases handed to review — legal review (法制审核) of major cases and case review (案件审核) of "
        "the others — of the principal's bureau and the bureaus under it (a city's legal-affairs body "
        "sees its counties' cases), oldest request first. Each round is due 10 working days after its "
        "request. Filters: `state` (pending / answered), `overdue` (pending past its due day), the "
        "case's `bureau_id`, `case_id`."
    ),
    responses=problem_responses(),
)
async def list_reviews(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    state: ReviewState | None = None,
    overdue: bool | None = None,
    bureau_id: IdQuery = None,
    case_id: IdQuery = None,
) -> Page[ReviewRead]:
    items, next_cursor = await service.list_reviews(
        session,
        principal,
        state=state,
        overdue=overdue,
        bureau_id=bureau_id,
        case_id=case_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/reviews/{review_id}",
    response_model=ReviewRead,
    tags=["reviews"],
    operation_id="get_review",
    summary="Read one review",
    description=(
        "One review (法制审核 / 案件审核) of a case: its request, due day, the case's officers (who may "
        "never review it) and, once answered, the opinion. The `ETag` is what `If-Match` names."
    ),
    responses=problem_responses(404),
)
async def get_review(review: ReviewToRead, response: Response) -> ReviewRead:
    response.headers["ETag"] = etag(review.version)
    return service.review_read(review)


@router.post(
    "/reviews/{review_id}/opinion",
    response_model=ReviewRead,
    tags=["reviews"],
    operation_id="answer_review",
    summary="Give the review's opinion (If-Match required)",
    description=(
        "The legal-affairs reviewer's opinion (审核意见): `agree` (同意), `correct` (纠正: `penalties` "
        "as corrected, and a corrected violation if any), or `investigate_further` (补充调查: the case "
        "goes back to investigation); `reason` always. A correction is checked with enforcement "
        "before it is sent: certificates the case concerns (422), a fine inside the range of the "
        "violation's article (409 `/problems/fine-outside-range`). Sent to enforcement as "
        "`statistics.review.answered`, whose handler takes the case's review step. Refused: an "
        "officer of the case (`/problems/reviewer-is-case-officer`, separation of duties), a review "
        "already answered (`/problems/review-already-answered`) or withdrawn because the case left "
        "review (`/problems/review-withdrawn`), a principal without the legal role "
        "(`/problems/role-required`), a reviewer whose post's duties do not list the step the opinion "
        "takes (`/problems/post-not-authorized`, 执法责任制) or who is not active "
        "(`/problems/officer-inactive`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428, 503),
)
async def answer_review(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: LegalOfficer,
    review: ReviewForUpdate,
    data: ReviewOpinionIn,
    response: Response,
    if_match: IfMatchDep = None,
) -> ReviewRead:
    services = request.app.state.services
    review = await service.answer_review(session, audit, services, principal, review, data, if_match)
    await session.commit()  # at once: the audit chain's lock is held until then
    response.headers["ETag"] = etag(review.version)
    return service.review_read(review)


# --- filings ---------------------------------------------------------------------


@router.get(
    "/filings",
    response_model=Page[FilingRead],
    tags=["filings"],
    operation_id="list_filings",
    summary="Major-case filings of the principal's subtree",
    description=(
        "Filings (重大案件备案) owed by closed major cases of the principal's bureau and the bureaus "
        "under it: the case's bureau files with the legal-affairs body of the next level up within "
        "the `major_case_filing` deadline after closing. Filters: `state`, `late` (filed after the "
        "due day, or not filed and past it), the case's `bureau_id`, `case_id`."
    ),
    responses=problem_responses(),
)
async def list_filings(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    state: FilingState | None = None,
    late: bool | None = None,
    bureau_id: IdQuery = None,
    case_id: IdQuery = None,
) -> Page[FilingRead]:
    items, next_cursor = await service.list_filings(
        session,
        principal,
        state=state,
        late=late,
        bureau_id=bureau_id,
        case_id=case_id,
        cursor=page.cursor,
        limit=page.limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/filings/{filing_id}",
    response_model=FilingRead,
    tags=["filings"],
    operation_id="get_filing",
    summary="Read one filing",
    description=(
        "One major-case filing (重大案件备案): its due day, submission and answer. `ETag` for If-Match."
    ),
    responses=problem_responses(404),
)
async def get_filing(filing: FilingToRead, response: Response) -> FilingRead:
    response.headers["ETag"] = etag(filing.version)
    return service.filing_read(filing)


@router.post(
    "/filings/{filing_id}/submission",
    response_model=FilingRead,
    tags=["filings"],
    operation_id="submit_filing",
    summary="File the case with the level above (If-Match required)",
    description=(
        "The case's bureau files (报备) the closed major case: a summary of the decision and the list "
        "of documents. Records `filed_on` and `on_time` (filed by the due day; after a return, the "
        "new submission's day is the one that counts). Allowed while "
        "expected or after a return (`/problems/filing-state` otherwise); only the case's own bureau "
        "files (`/problems/not-filing-bureau`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def submit_filing(
    session: SessionDep,
    audit: AuditDep,
    principal: Filer,
    filing: FilingToSubmit,
    data: FilingSubmission,
    response: Response,
    if_match: IfMatchDep = None,
) -> FilingRead:
    filing = await service.submit_filing(session, audit, principal, filing, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(filing.version)
    return service.filing_read(filing)


@router.post(
    "/filings/{filing_id}/answer",
    response_model=FilingRead,
    tags=["filings"],
    operation_id="answer_filing",
    summary="Accept or return a filing (If-Match required)",
    description=(
        "The receiving legal-affairs body — of the next level up, or one above it, never the filing "
        "bureau (`/problems/not-receiving-bureau`) — accepts the filing (准予备案) or returns it with "
        "reasons (`reason` required; the bureau then files again). Only a submitted filing is "
        "answered (`/problems/filing-state`). Enforcement shows the answer on the case "
        "(`statistics.filing.answered`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def answer_filing(
    session: SessionDep,
    audit: AuditDep,
    principal: LegalOfficer,
    filing: FilingToAnswer,
    data: FilingAnswerIn,
    response: Response,
    if_match: IfMatchDep = None,
) -> FilingRead:
    filing = await service.answer_filing(session, audit, principal, filing, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(filing.version)
    return service.filing_read(filing)

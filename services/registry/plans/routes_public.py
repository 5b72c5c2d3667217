"""The published inspection results (一公开): open to anyone, without a token.

No route here depends on the principal. Every request is counted per client
address (429 past the limit); answers carry an ETag and a matching
``If-None-Match`` gets 304 without a body.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from services.common.concurrency import ETAG_HEADER_MAX_LENGTH
from services.common.conditional import conditional_response
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses
from services.common.ratelimit import FixedWindowLimiter
from services.common.types import IdQuery
from services.registry.config import RegistrySettings
from services.registry.deps import ReadSessionDep
from services.registry.plans import public as service
from services.registry.plans.task_schemas import PublicResultRead

PREFIX = "/api/v1/registry/public"
RESULTS = "/inspection-results"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Anyone may keep a copy, but must ask again (with If-None-Match) before using it.
CACHE_CONTROL = "public, no-cache"


async def rate_limited(request: Request) -> None:
    settings: RegistrySettings = request.app.state.settings
    limiter = FixedWindowLimiter(
        limit=settings.public_rate_limit,
        window_seconds=settings.public_rate_window_seconds,
        key_prefix=settings.public_rate_key_prefix,
    )
    # Behind the gateway, the server takes the client's address from X-Forwarded-For
    # (uvicorn's proxy headers, trusted from the gateway's address only).
    await limiter.hit(request.app.state.jobs, request.client.host if request.client else None)


router = APIRouter(prefix=PREFIX, tags=["public"], dependencies=[Depends(rate_limited)])
PageDep = Annotated[PageParams, Depends(page_params)]
IfNoneMatch = Annotated[
    str | None, Header(description="An ETag of an earlier answer", max_length=ETAG_HEADER_MAX_LENGTH)
]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(429),
    304: {"description": "Not modified: the representation is the one `If-None-Match` names"},
}
_FILTERS = (
    "Filter by `plan_id`, the plan's `bureau_id` and the plan's `year`. Only results of done tasks "
    "are published; no officer is named and the findings stay internal. No token is needed; "
    "requests are limited per client address (429 with `Retry-After`). The `ETag` answers "
    "`If-None-Match` with 304."
)


def _filters(plan_id: int | None, bureau_id: int | None, year: int | None) -> dict[str, Any]:
    return {"plan_id": plan_id, "bureau_id": bureau_id, "year": year}


def _answer(body: bytes, media_type: str, if_none_match: str | None) -> Response:
    return conditional_response(body, media_type, if_none_match, headers={"Cache-Control": CACHE_CONTROL})


Year = Annotated[int | None, Query(ge=2000, le=2100, description="The plan's year")]
BureauQuery = Annotated[IdQuery, Query(description="The bureau whose plan it is")]


@router.get(
    RESULTS,
    response_model=Page[PublicResultRead],
    operation_id="list_public_inspection_results",
    summary="Published inspection results (JSON)",
    description=(
        'The results of "double random, one public" (双随机、一公开) inspections, published (一公开) '
        "within 20 working days of each inspection: plan, bureau, subject, day, result and the "
        "latest day of publication, oldest task first. " + _FILTERS
    ),
    responses=_RESPONSES,
)
async def list_public_inspection_results(
    request: Request,
    session: ReadSessionDep,
    page: PageDep,
    plan_id: IdQuery = None,
    bureau_id: BureauQuery = None,
    year: Year = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    settings: RegistrySettings = request.app.state.settings
    items, next_cursor = await service.list_results(
        session, _filters(plan_id, bureau_id, year), page.cursor, page.limit, settings.public_due_working_days
    )
    body = orjson.dumps(Page(items=items, next_cursor=next_cursor).model_dump(mode="json"))
    return _answer(body, "application/json", if_none_match)


@router.get(
    RESULTS + ".csv",
    operation_id="export_public_inspection_results",
    summary="Published inspection results (CSV)",
    description=(
        "Every published result (一公开) the filters select, as CSV (UTF-8 with a byte order mark), "
        "one row per inspection with the columns of the JSON list. " + _FILTERS
    ),
    responses={200: {"content": {"text/csv": {}}, "description": "The results as CSV"}, **_RESPONSES},
    response_class=Response,
)
async def export_public_inspection_results(
    request: Request,
    session: ReadSessionDep,
    plan_id: IdQuery = None,
    bureau_id: BureauQuery = None,
    year: Year = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    settings: RegistrySettings = request.app.state.settings
    body = await service.results_csv(
        session, _filters(plan_id, bureau_id, year), settings.public_due_working_days
    )
    response = _answer(body, CSV_MEDIA_TYPE, if_none_match)
    response.headers["Content-Disposition"] = 'attachment; filename="inspection-results.csv"'
    return response

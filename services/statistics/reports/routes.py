"""Statistical reports (认证执法统计报表) and their scheduled pulls: thin handlers.

Scheduled pulls (定期报送的拉取): ``GET /reports/{bureau_id}/{period}`` answers the newest
submitted revision of the bureau's report for the period — or, before any submission, the live
aggregates marked ``provisional`` — as JSON; the same URL ending in ``.csv`` or ``.xlsx`` answers
CSV or an XLSX workbook. The format is chosen by the path only (no Accept negotiation), so each
URL has one representation and one ETag. Every read carries a strong ETag computed from the
bytes sent, and ``If-None-Match`` with it is answered ``304`` with no body; ``Cache-Control:
private, no-cache`` lets a client keep the copy and revalidate it on every pull.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.convertors import Convertor, register_url_convertor

from services.common.auth import Principal, Role
from services.common.conditional import conditional_response, if_none_match_tags
from services.common.db import like_prefix
from services.common.deps import Authorize, scoped_loader
from services.common.pagination import Page, PageParams, decode_cursor, encode_cursor, page_params
from services.common.problems import NotFound, problem_responses
from services.common.types import IdPath, IdQuery
from services.statistics.deps import AuditDep, DatabaseDep, IfMatchDep, PrincipalDep, SessionDep
from services.statistics.facts.bureaus import registry_bureau
from services.statistics.reports import repository as repo
from services.statistics.reports import service
from services.statistics.reports.models import ReportState
from services.statistics.reports.periods import PERIOD_PATTERN, parse_period
from services.statistics.reports.render import csv_body, json_body, trend_measures, xlsx_body
from services.statistics.reports.schemas import (
    ReportCorrection,
    ReportCreate,
    ReportRead,
    ReportSummary,
)

PREFIX = "/api/v1/statistics"
router = APIRouter(prefix=PREFIX, tags=["reports"])
PageDep = Annotated[PageParams, Depends(page_params)]
WRITER_ROLES = (Role.LEGAL, Role.ADMIN)
ReportWriter = Authorize(*WRITER_ROLES)
ReportForUpdate = Annotated[
    SimpleNamespace, Depends(scoped_loader(repo.lock_report, noun="report", roles=WRITER_ROLES))
]
CACHE_CONTROL = "private, no-cache"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PeriodPath = Annotated[
    str, Path(pattern=PERIOD_PATTERN, description="`YYYY-MM`, `YYYY-Qn` or `YYYY`", examples=["2026-05"])
]


class PeriodConvertor(Convertor[str]):
    """A period key in a path: the pull URLs match only real periods, so
    ``/reports/{id}/submission`` is never mistaken for one (its 405 lists only POST)."""

    regex = r"(?:199[0-9]|20[0-9]{2})(?:-(?:0[1-9]|1[0-2])|-Q[1-4])?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("report_period", PeriodConvertor())
NOT_MODIFIED = {304: {"description": "Not modified: the If-None-Match ETag is current (no body)"}}


def conditional(
    request: Request, body: bytes | None, media_type: str, *, tag: str | None = None, **headers: str
) -> Response:
    """``body`` with its ETag and the pulls' Cache-Control, or 304 when If-None-Match names it."""
    return conditional_response(
        body,
        media_type,
        request.headers.get("if-none-match"),
        tag=tag,
        headers={"Cache-Control": CACHE_CONTROL, **headers},
    )


async def _body(database, principal: Principal, report_id: int) -> tuple[bytes, str]:
    async with database.driver() as conn:
        report = await repo.report(conn, report_id)
        if report is None or not principal.in_scope(report["bureau_path"]):
            raise NotFound(f"Report {report_id} not found.")
        return await service.report_body(conn, report)


async def _written(database, report_id: int, *, created: bool) -> Response:
    """A write's answer: the revision's document with its ETag (and Location when created)."""
    async with database.driver() as conn:
        body, tag = await service.report_body(conn, await repo.report(conn, report_id))
    headers = {"ETag": tag}
    if created:
        headers["Location"] = f"{PREFIX}/reports/{report_id}"
    return Response(body, status_code=201 if created else 200, media_type="application/json", headers=headers)


@router.post(
    "/reports",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    operation_id="generate_report",
    summary="Generate a draft statistical report for a period",
    description=(
        "Generates the draft of the bureau's statistical report (认证执法统计报表) for a month "
        "(`2026-05`), quarter (`2026-Q2`) or year (`2026`): every figure of the aggregates of the "
        "bureau's subtree for the period (dimension `all` and the breakdowns) is copied into the "
        "draft. For the bureau's own legal-affairs body (法制工作机构) or administrator. One draft at a "
        "time (`/problems/report-draft-exists`); a submitted report is corrected, not generated again "
        "(`/problems/report-already-submitted`); another bureau's report is refused "
        "(`/problems/report-of-another-bureau`); a period not yet begun is `/problems/period-not-started`."
    ),
    responses=problem_responses(403, 409),
)
async def generate_report(
    session: SessionDep,
    database: DatabaseDep,
    audit: AuditDep,
    principal: ReportWriter,
    data: ReportCreate,
) -> Response:
    report_id = await service.generate_report(session, audit, principal, data.bureau_id, data.period)
    await session.commit()
    return await _written(database, report_id, created=True)


@router.get(
    "/reports",
    response_model=Page[ReportSummary],
    operation_id="list_reports",
    summary="List the statistical report revisions of the principal's subtree",
    description=(
        "Every revision (drafts and submitted) of the statistical reports (认证执法统计报表) of the "
        "principal's bureau and the bureaus under it, oldest first; filter by `bureau_id`, `period` "
        "and `state`."
    ),
    responses=problem_responses(),
)
async def list_reports(
    database: DatabaseDep,
    principal: PrincipalDep,
    page: PageDep,
    bureau_id: IdQuery = None,
    period: Annotated[str | None, Query(pattern=PERIOD_PATTERN)] = None,
    state: ReportState | None = None,
) -> Page[ReportSummary]:
    after = decode_cursor(page.cursor, int)
    filters = {"bureau_id": bureau_id, "period": period, "state": state and state.value}
    async with database.driver() as conn:
        rows = await repo.list_reports(
            conn, like_prefix(principal.bureau_path), filters, after[0] if after else None, page.limit + 1
        )
    next_cursor = encode_cursor([rows[page.limit - 1]["id"]]) if len(rows) > page.limit else None
    return Page(items=[ReportSummary(**dict(r)) for r in rows[: page.limit]], next_cursor=next_cursor)


@router.get(
    "/reports/{report_id}",
    response_model=ReportRead,
    operation_id="get_report",
    summary="Read one revision of a statistical report",
    description=(
        "One revision of a statistical report (认证执法统计报表) with its figures (ordered by measure) "
        "and, for a bureau with subordinate bureaus, the rollup: the sum of their newest submitted "
        "revisions beside this report's own figures, and which of them have not submitted. The ETag "
        "(strong, from the content) is what submission's If-Match names; If-None-Match answers 304."
    ),
    responses={**problem_responses(404), **NOT_MODIFIED},
)
async def get_report(
    request: Request, database: DatabaseDep, principal: PrincipalDep, report_id: IdPath
) -> Response:
    body, tag = await _body(database, principal, report_id)
    return conditional(request, body, "application/json", tag=tag)


@router.post(
    "/reports/{report_id}/submission",
    response_model=ReportRead,
    operation_id="submit_report",
    summary="Submit a draft statistical report (If-Match required); it is frozen from then on",
    description=(
        "Submits (报送) the draft the caller read, named by its ETag in If-Match (412 when the report "
        "changed since, 428 without it). The submitted revision is frozen: later changes of the "
        "aggregates never alter it and any write to it is `/problems/report-submitted`; a correction "
        "is a new revision. Only after the period has ended (`/problems/period-not-closed`)."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def submit_report(
    session: SessionDep,
    database: DatabaseDep,
    audit: AuditDep,
    principal: PrincipalDep,
    report: ReportForUpdate,
    if_match: IfMatchDep = None,
) -> Response:
    await service.submit_report(session, audit, principal, report, if_match)
    await session.commit()
    return await _written(database, report.id, created=False)


@router.post(
    "/reports/{report_id}/corrections",
    response_model=ReportRead,
    status_code=status.HTTP_201_CREATED,
    operation_id="correct_report",
    summary="Correct a submitted statistical report: a new revision",
    description=(
        "A correction (更正) of the newest submitted revision: a new draft revision, with the "
        "aggregates' current figures, that `supersedes` it; the submitted one is kept unchanged. "
        "Submit the new revision as any draft. `/problems/report-not-submitted` for a draft, "
        "`/problems/report-superseded` for a revision that is not the newest, "
        "`/problems/report-draft-exists` when a correction is already drafted."
    ),
    responses=problem_responses(403, 404, 409),
)
async def correct_report(
    session: SessionDep,
    database: DatabaseDep,
    audit: AuditDep,
    principal: PrincipalDep,
    report: ReportForUpdate,
    data: ReportCorrection,
) -> Response:
    report_id = await service.correct_report(session, audit, principal, report, data.reason)
    await session.commit()
    return await _written(database, report_id, created=True)


# --- scheduled pulls ----------------------------------------------------------------------


async def _pulled(
    request: Request, database, principal: Principal, bureau_id: int, period_key: str, *, trend: bool = False
):
    """The pulled report as a dict (the submitted revision's stored document, else the live
    figures), with the trend of its main measures when asked."""
    period = parse_period(period_key)
    async with database.driver() as conn:
        report = await repo.newest_submitted(conn, bureau_id, period.key)
        if report is not None:
            if not principal.in_scope(report["bureau_path"]):
                raise NotFound(f"Bureau {bureau_id} not found.")
            document = orjson.loads(report["document"])
        else:
            document = await _provisional(conn, principal, bureau_id, period, request.app.state.services)
        if not trend:
            return document, []
        measures = trend_measures(document)
        periods = [p.key for p in period.trend()]
        rows = await repo.trend_figures(conn, bureau_id, periods, measures) if measures else []
    values: dict[str, dict[str, str | None]] = {p: {m: None for m in measures} for p in periods}
    for row in rows:
        amount = row["amount"]
        values[row["period"]][row["measure"]] = None if amount is None else service.amount_text(amount)
    return document, list(values.items())


async def _provisional(conn, principal: Principal, bureau_id: int, period, services=None) -> dict[str, Any]:
    known = await repo.bureau(conn, bureau_id)
    if known is None and services is not None:
        # A bureau statistics has heard nothing of yet (no aggregates, not in its bureau
        # dimension) still has a report: ask the registry where it stands.
        found = await registry_bureau(services, bureau_id)
        known = (found["path"], found.get("name")) if found else None
    if known is None or not principal.in_scope(known[0]):
        raise NotFound(f"Bureau {bureau_id} not found.")
    return await service.provisional_document(conn, bureau_id, known[0], known[1], period)


PULL_DESCRIPTION = (
    "The stable URL of a bureau's statistical report (认证执法统计报表) for a period, for scheduled "
    "pulls by provincial systems: the newest submitted revision, or before any submission the "
    "live aggregates with `state` `provisional`. Strong ETag from the content; If-None-Match "
    "answers 304 with no body; `Cache-Control: private, no-cache`. "
)


@router.get(
    "/reports/{bureau_id}/{period:report_period}.csv",
    operation_id="pull_report_csv",
    summary="Pull a bureau's report for a period as CSV",
    description=PULL_DESCRIPTION
    + "CSV (UTF-8, header line): bureau_id, period, state, revision, measure, dimension, value, amount.",
    responses={
        200: {"description": "The figures", "content": {"text/csv": {"schema": {"type": "string"}}}},
        **NOT_MODIFIED,
        **problem_responses(404),
    },
    response_class=Response,
)
async def pull_report_csv(
    request: Request, database: DatabaseDep, principal: PrincipalDep, bureau_id: IdPath, period: PeriodPath
) -> Response:
    document, _ = await _pulled(request, database, principal, bureau_id, period)
    return conditional(
        request,
        csv_body(document),
        "text/csv; charset=utf-8",
        **{"Content-Disposition": f'attachment; filename="report-{bureau_id}-{period}.csv"'},
    )


@router.get(
    "/reports/{bureau_id}/{period:report_period}.xlsx",
    operation_id="pull_report_xlsx",
    summary="Pull a bureau's report for a period as an XLSX workbook",
    description=PULL_DESCRIPTION
    + "XLSX for people: the figures sheet, the trend's data (the months or quarters of the year up "
    "to the period, or five years) and a chart sheet of the trend of the main measures.",
    responses={
        200: {
            "description": "The workbook",
            "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}},
        },
        **NOT_MODIFIED,
        **problem_responses(404),
    },
    response_class=Response,
)
async def pull_report_xlsx(
    request: Request, database: DatabaseDep, principal: PrincipalDep, bureau_id: IdPath, period: PeriodPath
) -> Response:
    document, trend = await _pulled(request, database, principal, bureau_id, period, trend=True)
    return conditional(
        request,
        xlsx_body(document, trend),
        XLSX,
        **{"Content-Disposition": f'attachment; filename="report-{bureau_id}-{period}.xlsx"'},
    )


@router.get(
    "/reports/{bureau_id}/{period:report_period}",
    response_model=ReportRead,
    operation_id="pull_report",
    summary="Pull a bureau's report for a period (JSON)",
    description=PULL_DESCRIPTION + "The same URL ending in `.csv` or `.xlsx` answers those formats.",
    responses={**problem_responses(404), **NOT_MODIFIED},
)
async def pull_report(
    request: Request, database: DatabaseDep, principal: PrincipalDep, bureau_id: IdPath, period: PeriodPath
) -> Response:
    # The hot path: a submitted report is one statement, and no body leaves the database when the
    # client's copy is current.
    tags, any_tag = if_none_match_tags(request.headers.get("if-none-match"))
    submitted = await repo.pull_submitted(database, bureau_id, period, tags, any_tag)
    if submitted is not None:
        if not principal.in_scope(submitted["bureau_path"]):
            raise NotFound(f"Bureau {bureau_id} not found.")
        return conditional(request, submitted["document"], "application/json", tag=submitted["etag"])
    async with database.driver() as conn:
        document = await _provisional(
            conn, principal, bureau_id, parse_period(period), request.app.state.services
        )
    return conditional(request, json_body(document), "application/json")

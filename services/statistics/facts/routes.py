"""Reconciliation runs (对账) over HTTP: run one now, list the runs and what they repaired."""

# ruff: noqa: S608 - statements composed of this module's constant fragments; every value is bound

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.common.auth import Principal, Role
from services.common.concurrency import etag
from services.common.deps import require_national_roles
from services.common.pagination import Page, PageParams, decode_cursor, make_page, page_params
from services.common.problems import NotFound, problem_responses
from services.common.types import IdPath
from services.statistics.deps import ReadSessionDep
from services.statistics.facts.reconciliation import reconcile

PREFIX = "/api/v1/statistics"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]
# A run reconciles every bureau's cases: a national administrator or legal-affairs officer starts it.
Reconciler = Annotated[Principal, require_national_roles(Role.ADMIN, Role.LEGAL)]


class ReconciliationRead(BaseModel):
    id: int
    started_at: datetime
    finished_at: datetime | None
    trigger: str = Field(description="`cron` (the nightly job) or `request` (started over HTTP)")
    requested_by: str | None
    status: str = Field(description="`running`, `succeeded` or `failed`")
    cases_seen: int = Field(description="Cases enforcement answered")
    facts_seen: int
    missing: int = Field(description="Facts added: enforcement had the case, statistics had no fact")
    outdated: int = Field(description="Facts replaced: older than enforcement's version, or altered")
    vanished: int = Field(description="Facts dropped: their case is no longer in enforcement")
    repaired_ids: dict[str, list[int]] = Field(
        description="Case ids per repair: `missing`, `outdated`, `altered`, `vanished` (at most 1000 each)"
    )
    error: str | None


_COLUMNS = (
    "id, started_at, finished_at, trigger, requested_by, status, cases_seen, facts_seen, missing, outdated, "
    "vanished, repaired_ids, error"
)


@router.post(
    "/reconciliations",
    response_model=ReconciliationRead,
    status_code=status.HTTP_201_CREATED,
    tags=["reconciliations"],
    operation_id="run_reconciliation",
    summary="Reconcile the case facts with enforcement now",
    description=(
        "Runs a reconciliation (对账) of the statistics' case facts with enforcement's cases at once and "
        "answers the run: facts missing, older than the case or altered are applied again, facts of "
        "cases enforcement no longer has are dropped, and the aggregates move with them. The nightly "
        "job `reconcile_facts` does the same. National administrators and legal-affairs officers only "
        "(403 `role-required`)."
    ),
    responses=problem_responses(403),
)
async def run_reconciliation(
    request: Request, principal: Reconciler, response: Response
) -> ReconciliationRead:
    state = request.app.state
    run = await reconcile(
        state.sessionmaker, state.services, trigger="request", requested_by=principal.account_id
    )
    response.headers["Location"] = f"{PREFIX}/reconciliations/{run.id}"
    response.headers["ETag"] = etag(1)
    return ReconciliationRead.model_validate(run, from_attributes=True)


@router.get(
    "/reconciliations",
    response_model=Page[ReconciliationRead],
    tags=["reconciliations"],
    operation_id="list_reconciliations",
    summary="List the reconciliation runs, newest first",
    description=(
        "The runs of the reconciliation (对账) of case facts with enforcement and what each repaired."
    ),
    responses=problem_responses(403, 422),
)
async def list_reconciliations(
    session: ReadSessionDep, principal: Reconciler, page: PageDep
) -> Page[ReconciliationRead]:
    after = decode_cursor(page.cursor, int)
    where = "" if after is None else "WHERE id < :after"
    rows = (
        (
            await (await session.connection()).execute(
                text(f"SELECT {_COLUMNS} FROM reconciliation_run {where} ORDER BY id DESC LIMIT :limit"),
                {"limit": page.limit + 1, **({} if after is None else {"after": after[0]})},
            )
        )
        .mappings()
        .all()
    )
    rows, next_cursor = make_page(list(rows), page.limit, lambda r: [r["id"]])
    return Page(items=[ReconciliationRead(**r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/reconciliations/{reconciliation_id}",
    response_model=ReconciliationRead,
    tags=["reconciliations"],
    operation_id="get_reconciliation",
    summary="Read one reconciliation run",
    description="One run of the reconciliation (对账): its counts and the case ids it repaired.",
    responses=problem_responses(403, 404),
)
async def get_reconciliation(
    session: ReadSessionDep, principal: Reconciler, reconciliation_id: IdPath
) -> ReconciliationRead:
    row = (
        (
            await (await session.connection()).execute(
                text(f"SELECT {_COLUMNS} FROM reconciliation_run WHERE id = :id"), {"id": reconciliation_id}
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"Reconciliation {reconciliation_id} not found.")
    return ReconciliationRead(**row)

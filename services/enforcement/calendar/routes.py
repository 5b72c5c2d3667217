"""Calendar and deadline-rule HTTP API: thin handlers that parse, authorize, call the service, respond."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import StringConstraints

from services.common.auth import Principal, Role
from services.common.deps import AuditDep, PrincipalDep, ReadSessionDep, SessionDep, require_national_roles
from services.common.problems import UnprocessableEntity, problem_responses
from services.enforcement.calendar import service
from services.enforcement.calendar.counting import ExcludedPeriod
from services.enforcement.calendar.schemas import (
    CalendarCoverage,
    CalendarYearLoad,
    CalendarYearRead,
    DeadlineRead,
    DeadlineRuleSetCreate,
    DeadlineRuleSetRead,
)

PREFIX = "/api/v1/enforcement"
router = APIRouter(prefix=PREFIX, tags=["calendar"])

# Loads calendar years and adds deadline rule sets: an administrator of the national regulator.
NationalAdmin = Annotated[Principal, require_national_roles(Role.ADMIN)]
YearPath = Annotated[int, Path(ge=2000, le=2999, description="The year, e.g. 2027")]
# An excluded period in a query: `[kind:]YYYY-MM-DD/YYYY-MM-DD`, or `/..` while it still runs.
_PERIOD = re.compile(
    r"(?:(?P<kind>[a-z_]{1,40}):)?(?P<start>\d{4}-\d{2}-\d{2})/(?P<end>\d{4}-\d{2}-\d{2}|\.\.)"
)
# The same shape for the document (ECMA regex: no named groups); dates are then checked.
PERIOD_PATTERN = r"^(?:[a-z_]{1,40}:)?[0-9]{4}-[0-9]{2}-[0-9]{2}/(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|\.\.)$"
MAX_EXCLUDED = 50
MAX_EXTENSION_DAYS = 3660


def _excluded_periods(values: list[str]) -> list[ExcludedPeriod]:
    periods, errors = [], []
    for i, value in enumerate(values):
        loc = f"query.excluded.{i}"
        match = _PERIOD.fullmatch(value)
        try:
            if match is None:
                raise ValueError("write `[kind:]YYYY-MM-DD/YYYY-MM-DD`, or `/..` for a period still running")
            end = match["end"]
            periods.append(
                ExcludedPeriod(
                    kind=match["kind"] or "excluded",
                    start=date.fromisoformat(match["start"]),
                    end=None if end == ".." else date.fromisoformat(end),
                )
            )
        except ValueError as exc:
            errors.append({"loc": loc, "message": str(exc), "type": "excluded_period"})
    if errors:
        raise UnprocessableEntity("; ".join(f"{e['loc']}: {e['message']}" for e in errors), errors=errors)
    return periods


@router.get(
    "/calendar",
    response_model=CalendarCoverage,
    summary="The years the working-day calendar covers",
    description=(
        "Every year whose working days (工作日) are known: from the installed chinese-calendar "
        "package (`chinese-calendar`), or loaded by a national administrator (`loaded`, with the "
        "notice, who and when). A deadline reaching any other year is refused "
        "(`/problems/calendar-not-covered`)."
    ),
    responses=problem_responses(),
)
async def read_calendar_coverage(session: ReadSessionDep, principal: PrincipalDep) -> CalendarCoverage:
    return await service.coverage(session)


@router.get(
    "/calendar/{year}",
    response_model=CalendarYearRead,
    summary="A year's holidays and adjusted working days",
    description=(
        "The holidays (法定节假日, every day off with the holiday's name) and the adjusted working "
        "days (调休上班) of a covered year. A year no calendar covers answers 404 `/problems/not-found` "
        "with `year`, saying how to load it."
    ),
    responses=problem_responses(404),
)
async def read_calendar_year(
    session: ReadSessionDep, principal: PrincipalDep, year: YearPath
) -> CalendarYearRead:
    return await service.calendar_year(session, year)


@router.put(
    "/calendar/{year}",
    response_model=CalendarYearRead,
    summary="Load (or replace) a year of the holiday calendar",
    description=(
        "Loads the State Council's holiday arrangement (国务院办公厅关于部分节假日安排的通知) of a year "
        "the installed chinese-calendar does not cover: every day off of the holidays, and the "
        "adjusted working days (调休上班, Saturdays or Sundays). A load replaces what the year held, and "
        "is audited. Refused: a year chinese-calendar covers (409 `/problems/calendar-year-built-in`); "
        "a date outside the year, listed twice, both a holiday and a working day, or an adjusted working "
        "day on a weekday (422 with the field errors, nothing stored). National administrators only."
    ),
    responses=problem_responses(403, 409),
)
async def load_calendar_year(
    session: SessionDep, audit: AuditDep, principal: NationalAdmin, year: YearPath, data: CalendarYearLoad
) -> CalendarYearRead:
    stored = await service.load_year(session, audit, principal, year, data)
    await session.commit()
    return stored


@router.get(
    "/deadline-rules",
    response_model=DeadlineRuleSetRead,
    summary="A set of deadline rules (the newest if none is named)",
    description=(
        "The procedural deadlines (办案期限) of a rule set: what starts each, how many days, working "
        "days (工作日), calendar days (自然日) or working days before an event, the extension and who "
        "approves it, the periods not counted. Without `rule_set`, the newest set in force, under "
        "which cases are opened today; `rule_sets` lists every set."
    ),
    responses=problem_responses(404),
)
async def read_deadline_rules(
    session: ReadSessionDep,
    principal: PrincipalDep,
    rule_set: Annotated[str | None, Query(max_length=40, description="A rule set's code")] = None,
) -> DeadlineRuleSetRead:
    return await service.rule_set_read(session, rule_set)


@router.post(
    "/deadline-rules",
    response_model=DeadlineRuleSetRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a new version of the deadline rules",
    description=(
        "Adds a rule set (办案期限规则), the whole set at once, in force from `effective_from` (today if "
        "left out): cases opened from then on are opened under it, while a case keeps the set it was "
        "opened under. It must name every rule of the current set, each once (422). A code taken "
        "answers 409 `/problems/rule-set-exists`. Audited. National administrators only."
    ),
    responses=problem_responses(403, 409),
)
async def add_deadline_rule_set(
    session: SessionDep, audit: AuditDep, principal: NationalAdmin, data: DeadlineRuleSetCreate
) -> DeadlineRuleSetRead:
    created = await service.create_rule_set(session, audit, principal, data)
    await session.commit()
    return created


@router.get(
    "/deadline-rules/{code}/due",
    response_model=DeadlineRead,
    summary="Compute a deadline, with its explanation",
    description=(
        "Previews the due date (期限届满日) of a rule from a starting day (not counted; for a "
        "`working_before` rule, the event), with an extension in the rule's day kind and periods "
        "excluded from the count (`excluded=[kind:]YYYY-MM-DD/YYYY-MM-DD`, repeated; `/..` for one still "
        "running, counted up to `as_of`, today by default, and the deadline then says `paused`). The "
        "answer explains itself: the non-working days skipped, the roll-over of a last day that is "
        "not a working day, the days the excluded periods added. A count reaching a year no calendar "
        "covers answers 409 `/problems/calendar-not-covered` with `year`."
    ),
    responses=problem_responses(404, 409),
)
async def preview_deadline(
    session: ReadSessionDep,
    principal: PrincipalDep,
    code: Annotated[str, Path(max_length=64, description="The rule's code, e.g. `decision`")],
    start: Annotated[date, Query(description="The starting day, YYYY-MM-DD (Asia/Shanghai)")],
    extension_days: Annotated[
        int, Query(ge=0, le=MAX_EXTENSION_DAYS, description="Days of an approved extension")
    ] = 0,
    rule_set: Annotated[
        str | None, Query(max_length=40, description="The rule set (the newest if left out)")
    ] = None,
    excluded: Annotated[
        list[Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]] | None,
        Query(max_length=MAX_EXCLUDED, description="Excluded periods, `[kind:]start/end`"),
    ] = None,
    as_of: Annotated[
        date | None, Query(description="The day open excluded periods run to (today if left out)")
    ] = None,
) -> DeadlineRead:
    deadline = await service.compute_deadline(
        session,
        code,
        start,
        extension_days=extension_days,
        excluded=_excluded_periods(excluded or []),
        rule_set=rule_set,
        as_of=as_of,
    )
    return DeadlineRead.model_validate(deadline.explain())

"""Pilot work HTTP API (试点工作): thin handlers that parse, authorize, call the service, respond.

The fixed paths (problems, acceptance samples) are declared before ``/pilots/{unit_id}``.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from services.common.auth import Principal, Role
from services.common.concurrency import etag
from services.common.deps import require_national_roles
from services.common.pagination import Page, PageParams, make_page, page_params
from services.common.problems import NotFound, problem_responses
from services.common.types import IdPath, IdQuery
from services.statistics.deps import (
    AuditDep,
    IfMatchDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    scoped_loader,
)
from services.statistics.pilots import registry, service
from services.statistics.pilots import repository as repo
from services.statistics.pilots.milestones import SUBMITTED
from services.statistics.pilots.models import PilotAcceptanceSample, PilotProblem
from services.statistics.pilots.schemas import (
    PilotBoard,
    ProblemAnswer,
    ProblemCreate,
    ProblemRead,
    ResultCreate,
    ResultRead,
    RolloutBureau,
    RolloutProgress,
    RolloutUpdate,
    SampleCreate,
    SampleRead,
    SubmissionCreate,
    SubmissionRead,
)

PREFIX = "/api/v1/statistics"
router = APIRouter(prefix=PREFIX, tags=["pilot work"])
PageDep = Annotated[PageParams, Depends(page_params)]
BOARD_MAX_LIMIT = 50
# The national regulator's administrators and its policy and legal affairs department.
NationalDep = Annotated[Principal, require_national_roles(Role.ADMIN, Role.LEGAL)]


async def _unit(request: Request, principal: PrincipalDep, unit_id: IdPath) -> dict:
    """The provincial pilot unit the path names, from the registry; 404 outside the scope."""
    return await registry.pilot_unit(request.app.state.services, principal, unit_id)


UnitDep = Annotated[dict, Depends(_unit)]


async def _lock_problem(session, problem_id: int) -> PilotProblem | None:
    return await repo.get_problem(session, problem_id, for_update=True)


ProblemDep = Annotated[
    PilotProblem,
    Depends(
        scoped_loader(
            repo.get_problem,
            noun="problem",
            param="problem_id",
            bureau_path=attrgetter("unit_path"),
            read_only=True,
        )
    ),
]
ProblemForAnswer = Annotated[
    PilotProblem,
    Depends(
        scoped_loader(_lock_problem, noun="problem", param="problem_id", bureau_path=attrgetter("unit_path"))
    ),
]


async def _sample_id(sample_id: IdPath, principal: PrincipalDep) -> int:
    if not principal.is_national:  # a sample is the national regulator's; below it, as missing
        raise NotFound(f"Acceptance sample {sample_id} not found.")
    return sample_id


SampleIdDep = Annotated[int, Depends(_sample_id)]


async def _load_sample(session, sample_id: int, *, for_update: bool = False) -> PilotAcceptanceSample:
    sample = await repo.get_sample(session, sample_id, for_update=for_update)
    if sample is None:
        raise NotFound(f"Acceptance sample {sample_id} not found.")
    return sample


# --- the board --------------------------------------------------------------------------


@router.get(
    "/pilots",
    response_model=Page[PilotBoard],
    summary="List the pilot units with their progress",
    description=(
        "The pilot progress board (试点进展): every provincial pilot unit (省级试点单位) of the "
        "principal's subtree, by id, with its grassroots pilot unit (基层试点单位), each milestone "
        "of the pilot work (due, met, on time or late, overdue), its open problems, its roll-out "
        f"counts and its acceptance spot check. `limit` at most {BOARD_MAX_LIMIT}."
    ),
    responses=problem_responses(),
)
async def list_pilots(
    request: Request,
    session: ReadSessionDep,
    principal: PrincipalDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=BOARD_MAX_LIMIT, description=f"At most {BOARD_MAX_LIMIT}")] = 20,
) -> Page[PilotBoard]:
    services = request.app.state.services
    units = await registry.pilot_units(services, principal)
    after = service.after_id(cursor)
    units = [u for u in units if after is None or u["id"] > after][: limit + 1]
    page, next_cursor = make_page(units, limit, lambda u: [u["id"]])
    return Page(items=await service.boards(session, services, page), next_cursor=next_cursor)


# --- problems ---------------------------------------------------------------------------


@router.get(
    "/pilots/problems",
    response_model=Page[ProblemRead],
    summary="List the problems pilot units reported",
    description=(
        "Problems the pilot units (试点单位) reported to the national regulator's policy and legal "
        "affairs department (政策法规司), oldest first, within the principal's subtree; filter by "
        "`unit_id` and `state` (open / answered)."
    ),
    responses=problem_responses(),
)
async def list_pilot_problems(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    unit_id: IdQuery = None,
    state: Literal["open", "answered"] | None = None,
) -> Page[ProblemRead]:
    items, next_cursor = await service.list_problems(
        session, principal, unit_id, state, page.cursor, page.limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/pilots/problems/{problem_id}",
    response_model=ProblemRead,
    summary="Read one pilot problem",
    description="A problem a pilot unit reported (试点问题反映) and its answer, with its ETag.",
    responses=problem_responses(404),
)
async def get_pilot_problem(problem: ProblemDep, response: Response) -> ProblemRead:
    response.headers["ETag"] = etag(problem.version)
    return service.problem_read(problem)


@router.post(
    "/pilots/problems/{problem_id}/answer",
    response_model=ProblemRead,
    summary="Answer a pilot unit's problem (If-Match required)",
    description=(
        "The national regulator's policy and legal affairs department (政策法规司) answers a "
        "problem a pilot unit reported (答复): an administrator or legal-affairs officer of the "
        "national regulator. Send the problem's ETag in If-Match. "
        "`/problems/problem-already-answered`, `/problems/answer-before-report`."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def answer_pilot_problem(
    session: SessionDep,
    audit: AuditDep,
    principal: NationalDep,
    problem: ProblemForAnswer,
    data: ProblemAnswer,
    response: Response,
    if_match: IfMatchDep = None,
) -> ProblemRead:
    answered = await service.answer_problem(session, audit, principal, problem, data, if_match)
    await session.commit()
    response.headers["ETag"] = etag(answered.version)
    return answered


# --- acceptance -------------------------------------------------------------------------


@router.get(
    "/pilots/acceptance-samples",
    response_model=Page[SampleRead],
    summary="List the acceptance spot-check samples",
    description=(
        "The draws of the formal acceptance by sampled spot checks (抽查验收), oldest first, with "
        "their seeds and results. The national regulator's (an empty list below it)."
    ),
    responses=problem_responses(),
)
async def list_acceptance_samples(
    session: ReadSessionDep, principal: PrincipalDep, page: PageDep
) -> Page[SampleRead]:
    if not principal.is_national:
        return Page(items=[], next_cursor=None)
    items, next_cursor = await service.list_samples(session, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/pilots/acceptance-samples",
    response_model=SampleRead,
    status_code=status.HTTP_201_CREATED,
    summary="Draw a sample of pilot units for the acceptance spot checks",
    description=(
        "The national regulator's formal acceptance (正式验收) by sampled spot checks (抽查): draws "
        "`size` units among those whose self-check (自查验收) was submitted, with "
        "`random.Random(seed)` over their sorted ids; the seed (given, or drawn and recorded) and "
        "the population are kept, so the draw can be repeated. An administrator or legal-affairs "
        "officer of the national regulator. `/problems/no-self-checks` when none was submitted."
    ),
    responses=problem_responses(403, 409),
)
async def draw_acceptance_sample(
    session: SessionDep, audit: AuditDep, principal: NationalDep, data: SampleCreate, response: Response
) -> SampleRead:
    sample = await service.draw_sample(session, audit, principal, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/pilots/acceptance-samples/{sample.id}"
    response.headers["ETag"] = etag(1)
    return sample


@router.get(
    "/pilots/acceptance-samples/{sample_id}",
    response_model=SampleRead,
    summary="Read one acceptance sample with its results",
    description="A draw of the acceptance spot checks (抽查验收): seed, population, units drawn, results.",
    responses=problem_responses(404),
)
async def get_acceptance_sample(session: ReadSessionDep, sample_id: SampleIdDep) -> SampleRead:
    return await service.read_sample(session, await _load_sample(session, sample_id))


@router.post(
    "/pilots/acceptance-samples/{sample_id}/results",
    response_model=ResultRead,
    status_code=status.HTTP_201_CREATED,
    summary="Record the spot check of a sampled unit",
    description=(
        "The result of the acceptance spot check (抽查验收结果) of one unit of the sample: passed, or "
        "failed with its findings. Once per unit. An administrator or legal-affairs officer of the "
        "national regulator. `/problems/unit-not-sampled`, `/problems/acceptance-result-recorded`, "
        "`/problems/check-before-draw`."
    ),
    responses=problem_responses(403, 404, 409),
)
async def record_acceptance_result(
    session: SessionDep,
    audit: AuditDep,
    principal: NationalDep,
    sample_id: SampleIdDep,
    data: ResultCreate,
    response: Response,
) -> ResultRead:
    sample = await _load_sample(session, sample_id, for_update=True)
    result = await service.record_result(session, audit, principal, sample, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/pilots/acceptance-samples/{sample_id}"
    return result


# --- one unit ---------------------------------------------------------------------------


@router.get(
    "/pilots/{unit_id}",
    response_model=PilotBoard,
    summary="Read a pilot unit's progress board",
    description=(
        "One provincial pilot unit's (省级试点单位) progress board: its grassroots pilot unit, each "
        "milestone with its due date, when it was met and whether on time, the open and answered "
        "problems, the roll-out counts and the acceptance spot check. 404 outside the scope."
    ),
    responses=problem_responses(404),
)
async def get_pilot(request: Request, session: ReadSessionDep, unit: UnitDep) -> PilotBoard:
    (board,) = await service.boards(session, request.app.state.services, [unit])
    return board


@router.get(
    "/pilots/{unit_id}/submissions",
    response_model=Page[SubmissionRead],
    summary="List a pilot unit's submissions, every revision",
    description=(
        "The unit's submissions (试点材料报送) oldest first, every revision kept; filter by `milestone`."
    ),
    responses=problem_responses(404),
)
async def list_pilot_submissions(
    session: ReadSessionDep,
    unit: UnitDep,
    page: PageDep,
    milestone: Literal[SUBMITTED] | None = None,  # type: ignore[valid-type]
) -> Page[SubmissionRead]:
    items, next_cursor = await service.list_submissions(session, unit, milestone, page.cursor, page.limit)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/pilots/{unit_id}/submissions",
    response_model=SubmissionRead,
    status_code=status.HTTP_201_CREATED,
    summary="Submit a milestone's material",
    description=(
        "A pilot unit submits (报送) a milestone's material: the implementation plan (实施方案), the "
        "2008 summary (总结) with its achievements, problems and typical experience, the grassroots "
        "pilot's completion (for the grassroots unit named in the registry), or the self-check "
        "(自查验收); late when submitted after the due date. A resubmission is a new revision and "
        "sends the current revision's ETag in If-Match (428 without it, 412 when stale). The grassroots "
        "unit itself is named in the registry (pilot designations). An administrator or legal-affairs "
        "officer of the unit itself (`/problems/pilot-unit-writer-required`); "
        "`/problems/no-grassroots-unit` when the completion comes before the naming."
    ),
    responses=problem_responses(403, 404, 409, 412, 428),
)
async def create_pilot_submission(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    unit: UnitDep,
    data: SubmissionCreate,
    response: Response,
    if_match: IfMatchDep = None,
) -> SubmissionRead:
    submission = await service.create_submission(
        session, audit, request.app.state.services, principal, unit, data, if_match
    )
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/pilots/{unit['id']}/submissions/{submission.id}"
    response.headers["ETag"] = etag(submission.revision)
    return submission


@router.get(
    "/pilots/{unit_id}/submissions/{submission_id}",
    response_model=SubmissionRead,
    summary="Read one submission revision",
    description="One revision of a milestone's material (试点材料); its ETag is its revision.",
    responses=problem_responses(404),
)
async def get_pilot_submission(
    session: ReadSessionDep, unit: UnitDep, submission_id: IdPath, response: Response
) -> SubmissionRead:
    submission = await service.read_submission(session, unit, submission_id)
    response.headers["ETag"] = etag(submission.revision)
    return submission


@router.post(
    "/pilots/{unit_id}/problems",
    response_model=ProblemRead,
    status_code=status.HTTP_201_CREATED,
    summary="Report a problem to the policy and legal affairs department",
    description=(
        "A pilot unit reports a problem met in the pilot (试点中遇到的问题) to the national "
        "regulator's policy and legal affairs department (政策法规司). An administrator or "
        "legal-affairs officer of the unit itself (`/problems/pilot-unit-writer-required`)."
    ),
    responses=problem_responses(403, 404),
)
async def report_pilot_problem(
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    unit: UnitDep,
    data: ProblemCreate,
    response: Response,
) -> ProblemRead:
    problem = await service.create_problem(session, audit, principal, unit, data)
    await session.commit()
    response.headers["Location"] = f"{PREFIX}/pilots/problems/{problem.id}"
    response.headers["ETag"] = etag(problem.version)
    return problem


@router.get(
    "/pilots/{unit_id}/rollout",
    response_model=RolloutProgress,
    summary="Read the roll-out of the pilot's model, per bureau",
    description=(
        "The roll-out of the pilot's model (试点经验全面推广) to every bureau under the provincial "
        "unit in the second half of 2009: each bureau of the registry's subtree with its state "
        "(not started / in progress / done, with dates) and the counts."
    ),
    responses=problem_responses(404),
)
async def get_pilot_rollout(request: Request, session: ReadSessionDep, unit: UnitDep) -> RolloutProgress:
    return await service.rollout_progress(session, request.app.state.services, unit)


@router.put(
    "/pilots/{unit_id}/rollout/{bureau_id}",
    response_model=RolloutBureau,
    summary="Record one bureau's roll-out (If-Match to correct it)",
    description=(
        "Records the roll-out of the pilot's model (试点经验推广) to one bureau under the unit: in "
        "progress since a date (not before 2009-07-01), or done on a date (late after 2009-12-31). "
        "201 when first recorded; a correction sends the record's ETag in If-Match. An "
        "administrator or legal-affairs officer of the unit itself; a bureau outside its subtree "
        "answers 404, as if missing."
    ),
    responses={
        201: {"model": RolloutBureau, "description": "The bureau's roll-out, recorded for the first time"},
        **problem_responses(403, 404, 409, 412, 428),
    },
)
async def record_pilot_rollout(
    request: Request,
    session: SessionDep,
    audit: AuditDep,
    principal: PrincipalDep,
    unit: UnitDep,
    bureau_id: IdPath,
    data: RolloutUpdate,
    response: Response,
    if_match: IfMatchDep = None,
) -> RolloutBureau:
    recorded, created = await service.record_rollout(
        session, audit, request.app.state.services, principal, unit, bureau_id, data, if_match
    )
    await session.commit()
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"{PREFIX}/pilots/{unit['id']}/rollout"
    response.headers["ETag"] = etag(recorded.version or 1)
    return recorded

"""Pilot designations (试点单位): each provincial pilot unit names its one grassroots pilot unit.

The notice's 16 provincial units (省级试点单位) each name one grassroots unit
(基层试点单位) inside their own subtree: an entry-exit unit one of its branch
bureaus, a quality-supervision unit one of its city or county bureaus. A second
is refused while the first is current; a withdrawal frees the place. The named
bureau's ``pilot`` field follows the designation (``grassroots`` while named,
``none`` after the withdrawal), so it is changed here and nowhere else.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal
from services.common.concurrency import check_if_match
from services.common.pagination import decode_cursor, make_page
from services.common.problems import Conflict, NotFound, UnprocessableEntity
from services.registry.network import repository as network_repo
from services.registry.network.models import (
    Bureau,
    BureauLevel,
    BureauSystem,
    PilotDesignation,
    PilotRole,
)
from services.registry.pilots import repository as repo
from services.registry.pilots.schemas import (
    PilotDesignationCreate,
    PilotDesignationRead,
    PilotDesignationWithdrawal,
)

# Which levels a provincial unit's grassroots pilot may have, by the unit's system.
GRASSROOTS_LEVELS: dict[BureauSystem, frozenset[BureauLevel]] = {
    BureauSystem.ENTRY_EXIT: frozenset({BureauLevel.BRANCH}),
    BureauSystem.QUALITY_SUPERVISION: frozenset({BureauLevel.CITY, BureauLevel.COUNTY}),
}


def _require_pilot_unit(bureau: Bureau) -> None:
    if bureau.pilot != PilotRole.PROVINCIAL:
        raise Conflict(
            f"Bureau {bureau.id} is not a provincial pilot unit: only those name a grassroots pilot unit.",
            slug="not-a-pilot-unit",
        )


async def read_designation(session: AsyncSession, unit_id: int, designation_id: int) -> PilotDesignationRead:
    """One designation of the unit (which the route loaded in the principal's scope)."""
    row = await repo.designation_row(session, designation_id)
    if row is None or row["provincial_bureau_id"] != unit_id:
        raise NotFound(f"Pilot designation {designation_id} of bureau {unit_id} not found.")
    return PilotDesignationRead.model_validate(row)


async def list_designations(
    session: AsyncSession, unit: Bureau, cursor: str | None, limit: int
) -> tuple[list[PilotDesignationRead], str | None]:
    after = decode_cursor(cursor, int)
    rows = await repo.list_designation_rows(
        session,
        unit.id,  # type: ignore[arg-type]
        after_id=after[0] if after else None,
        limit=limit + 1,
    )
    page, next_cursor = make_page(rows, limit, lambda r: [r["id"]])
    return [PilotDesignationRead.model_validate(r) for r in page], next_cursor


async def _grassroots_candidate(
    session: AsyncSession, principal: Principal, unit: Bureau, grassroots_id: int
) -> Bureau:
    """The bureau to be named, checked against the unit's subtree, level and system."""
    bureau = await network_repo.get_bureau(session, grassroots_id)
    if bureau is None or not principal.in_scope(bureau.path):
        message = f"No bureau {grassroots_id} in scope."
        raise UnprocessableEntity(
            message,
            errors=[{"loc": "body.grassroots_bureau_id", "message": message, "type": "bureau_not_found"}],
        )
    if bureau.id == unit.id or not bureau.path.startswith(unit.path):
        raise Conflict(
            f"Bureau {bureau.id} is not under the provincial unit {unit.id}: a unit names its "
            "grassroots pilot within its own subtree.",
            slug="grassroots-outside-unit",
        )
    allowed = GRASSROOTS_LEVELS.get(BureauSystem(unit.system), frozenset())
    if bureau.system != unit.system or bureau.level not in allowed:
        raise Conflict(
            f"A {unit.system} unit names a {' or '.join(sorted(allowed))} bureau as its grassroots "
            f"pilot, not a {bureau.level} bureau.",
            slug="grassroots-level-mismatch",
        )
    return bureau


async def create_designation(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    unit: Bureau,
    data: PilotDesignationCreate,
) -> PilotDesignationRead:
    _require_pilot_unit(unit)
    bureau_id = unit.id
    grassroots = await _grassroots_candidate(session, principal, unit, data.grassroots_bureau_id)
    current = await repo.current_designation(session, bureau_id)
    if current is not None:
        raise Conflict(
            f"Bureau {bureau_id} already names bureau {current.grassroots_bureau_id} (designation "
            f"{current.id}); withdraw it before naming another.",
            slug="pilot-already-designated",
            current_designation_id=current.id,
        )
    # A concurrent designation that passed the same check fails here on
    # uq_pilot_designation_current, which the app answers as pilot-already-designated.
    designation = await repo.add(
        session,
        PilotDesignation(
            provincial_bureau_id=bureau_id,
            grassroots_bureau_id=grassroots.id,
            reported_on=data.reported_on,
        ),
    )
    await repo.set_bureau_pilot(session, grassroots.id, PilotRole.GRASSROOTS)  # type: ignore[arg-type]
    await audit.record(
        session,
        principal,
        "pilot_designation.created",
        "pilot_designation",
        designation.id,
        {"provincial_bureau_id": bureau_id, **data.model_dump(mode="json")},
    )
    return await read_designation(session, bureau_id, designation.id)  # type: ignore[arg-type]


async def withdraw_designation(
    session: AsyncSession,
    audit: AuditLog,
    principal: Principal,
    unit: Bureau,
    designation_id: int,
    data: PilotDesignationWithdrawal,
    if_match: str | None,
) -> PilotDesignationRead:
    bureau_id = unit.id
    designation = await repo.get_designation(session, designation_id, for_update=True)
    if designation is None or designation.provincial_bureau_id != bureau_id:
        raise NotFound(f"Pilot designation {designation_id} of bureau {bureau_id} not found.")
    check_if_match(if_match, designation.version)
    if designation.withdrawn_on is not None:
        raise Conflict(
            f"Pilot designation {designation_id} was already withdrawn on {designation.withdrawn_on}.",
            slug="pilot-designation-withdrawn",
        )
    if data.withdrawn_on < designation.reported_on:
        raise Conflict(
            f"The designation was reported on {designation.reported_on}; it cannot be withdrawn "
            f"before that ({data.withdrawn_on}).",
            slug="withdrawal-before-report",
        )
    await repo.withdraw(session, designation_id, data.withdrawn_on, data.reason)
    await repo.set_bureau_pilot(session, designation.grassroots_bureau_id, PilotRole.NONE)
    await audit.record(
        session,
        principal,
        "pilot_designation.withdrawn",
        "pilot_designation",
        designation_id,
        {"provincial_bureau_id": bureau_id, **data.model_dump(mode="json")},
    )
    session.expire_all()
    return await read_designation(session, bureau_id, designation_id)  # type: ignore[arg-type]

"""Demo "double random, one public" (双随机、一公开) inspection plans for `make run`: per pilot
unit, four supervision officers holding credentials (the officer pool) and one plan of the
unit's certificates, drawn — so the plan, its frozen pool, its tasks, their verification and
coverage can be read at once. Development only; idempotent (officers by name, the plan by
its title: a re-run makes nothing new, and never draws a plan twice).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.audit import AuditLog
from services.common.auth import Principal, PrincipalKind, Role
from services.common.dates import CalendarNotCovered, add_working_days
from services.registry.demo import SEED_ACTOR, SYSTEM_CODES
from services.registry.network.models import BodyKind, Bureau, Officer
from services.registry.plans.models import InspectionPlan, PlanState
from services.registry.plans.schemas import PlanCreate
from services.registry.plans.service import create_plan, draw_plan

# (officer name, credential suffix): the supervision body's inspectors of each pilot unit. Four:
# the two drawn for a subject in the demo plan are recused from it in the unit's next plan, and
# a task needs two.
DEMO_INSPECTORS = (
    ("演示监督员甲", "S01"),
    ("演示监督员乙", "S02"),
    ("演示监督员丙", "S03"),
    ("演示监督员丁", "S04"),
)
# Drawn on a Monday of a year the holiday calendar covers when today's due dates would not be.
FALLBACK_DRAW_DAY = date(2026, 3, 2)
DRAW_COUNT = 2
STRATA = [{"code": "recent_suspension", "rule": "recent_suspension", "weight": 3}]


def demo_plan_title(year: int) -> str:
    return f"{year}年度认证有效性双随机抽查计划（演示）"


def draw_day(today: date, due_working_days: int) -> date:
    """Today, if its tasks' due date lies in a year the calendar covers; else the fallback day."""
    try:
        add_working_days(today, due_working_days)
    except CalendarNotCovered:
        return FALLBACK_DRAW_DAY
    return today


async def _inspectors(session: AsyncSession, audit: AuditLog, unit: Bureau) -> int:
    made = 0
    for name, suffix in DEMO_INSPECTORS:
        found = await session.exec(select(Officer).where(Officer.bureau_id == unit.id, Officer.name == name))  # type: ignore[call-overload]
        if found.scalars().first() is not None:
            continue
        number = f"{unit.division_code}{SYSTEM_CODES[unit.system]}{suffix}"
        officer = Officer(bureau_id=unit.id, body=BodyKind.SUPERVISION, name=name, credential_number=number)  # type: ignore[arg-type]
        session.add(officer)
        await session.flush()
        await audit.record(
            session,
            None,
            "officer.seeded",
            "officer",
            officer.id,
            {"bureau_id": unit.id, "name": name, "body": "supervision", "credential_number": number},
        )
        made += 1
    return made


async def seed_demo_plans(
    session: AsyncSession, audit: AuditLog, units: list[Bureau], today: date
) -> dict[str, int]:
    """Per pilot unit: its inspectors, and its plan of the year drawn. Inserts what is missing;
    the caller commits."""
    officers_made = plans_made = 0
    for unit in units:
        officers_made += await _inspectors(session, audit, unit)
        on = draw_day(today, 20)
        title = demo_plan_title(on.year)
        query = select(InspectionPlan).where(
            InspectionPlan.bureau_id == unit.id, InspectionPlan.title == title
        )
        plan = (await session.exec(query)).scalars().first()  # type: ignore[call-overload]
        if plan is not None and plan.state != PlanState.DRAFT:
            continue
        principal = Principal(
            account_id=SEED_ACTOR,
            kind=PrincipalKind.SERVICE,
            bureau_id=unit.id,  # type: ignore[arg-type]
            bureau_path=unit.path,
            roles=frozenset({Role.SUPERVISION}),
        )
        if plan is None:
            data = PlanCreate.model_validate(
                {
                    "year": on.year,
                    "title": title,
                    "subject_type": "certificate",
                    "draw_count": DRAW_COUNT,
                    "strata": STRATA,
                    "due_working_days": 20,
                }
            )
            plan = await create_plan(session, audit, principal, data)
        await draw_plan(session, audit, principal, plan, on=on)
        plans_made += 1
    return {"demo_inspectors_created": officers_made, "demo_plans_drawn": plans_made}

"""The demo inspection plans `make run` seeds: one per pilot unit, drawn, verifiable, seeded once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from services.common.dates import add_working_days
from services.registry.demo_plans import DEMO_INSPECTORS, demo_plan_title, draw_day, seed_demo_plans
from services.registry.models import AUDIT
from services.registry.network.models import Bureau, Officer
from services.registry.plans.models import InspectionPlan, InspectionTask, TaskOfficer
from services.registry.plans.service import verify_draw
from tests.factories import chain_of, create_provincial_unit

TODAY = date(2026, 11, 29)


async def _seed(registry, unit_ids: list[int], today: date = TODAY) -> dict[str, int]:
    async with registry.app.state.sessionmaker() as session:
        units = [await session.get(Bureau, i) for i in unit_ids]
        summary = await seed_demo_plans(session, AUDIT, units, today)
        await session.commit()
    return summary


@pytest.mark.asyncio(loop_scope="session")
async def test_each_unit_gets_one_drawn_plan_seeded_once(registry, token_for):
    unit = await create_provincial_unit(registry, token_for(), "quality_supervision", "650000")
    certificates = [(await chain_of(registry, unit))["certificate"] for _ in range(3)]
    first = await _seed(registry, [unit["id"]])
    again = await _seed(registry, [unit["id"]])
    assert first == {"demo_inspectors_created": len(DEMO_INSPECTORS), "demo_plans_drawn": 1}
    assert again == {"demo_inspectors_created": 0, "demo_plans_drawn": 0}

    async with registry.app.state.sessionmaker() as session:
        plans = (
            (await session.exec(select(InspectionPlan).where(InspectionPlan.bureau_id == unit["id"])))
            .scalars()
            .all()
        )
        assert [(p.title, p.state, p.year) for p in plans] == [(demo_plan_title(2026), "drawn", 2026)]
        plan = plans[0]
        assert plan.pool_size == len(certificates) and plan.drawn_on == TODAY
        tasks = (
            (await session.exec(select(InspectionTask).where(InspectionTask.plan_id == plan.id)))
            .scalars()
            .all()
        )
        assert len(tasks) == 2
        assert {t.subject_id for t in tasks} <= {c.id for c in certificates}
        for task in tasks:
            assert task.due_on == add_working_days(TODAY, 20) and task.due_on.year == 2026
        inspectors = {
            o.id
            for o in (await session.exec(select(Officer).where(Officer.bureau_id == unit["id"]))).scalars()
            if o.body == "supervision" and o.credential_number
        }
        assert len(inspectors) == len(DEMO_INSPECTORS)
        drawn = (
            (await session.exec(select(TaskOfficer).where(TaskOfficer.task_id.in_([t.id for t in tasks]))))
            .scalars()
            .all()
        )
        assert len(drawn) == 4 and {d.officer_id for d in drawn} <= inspectors
        assert (await verify_draw(session, plan)).matches


def test_a_year_the_calendar_does_not_cover_falls_back_to_a_covered_day():
    assert draw_day(date(2026, 6, 1), 20) == date(2026, 6, 1)
    fallback = draw_day(date(2031, 6, 2), 20)
    assert add_working_days(fallback, 20).year == fallback.year

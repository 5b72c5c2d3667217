"""Coverage (抽查覆盖率) of inspection plans: the figures equal direct counts of the frozen pool
and the tasks, written straight to the tables."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from services.registry.certification.models import CertificateStatusChange
from services.registry.plans.models import (
    InspectionPlan,
    InspectionTask,
    PlanPoolMember,
)
from tests.conftest import assert_problem, auth
from tests.factories import (
    chain_of,
    create_bureau,
    create_officer,
    create_provincial_unit,
    insert_certificate,
    insert_row,
    store,
    unique,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PLANS = "/api/v1/registry/inspection-plans"
COVERAGE = "/api/v1/registry/inspection-coverage"
STRATA = [
    {"code": "recent_suspension", "rule": "recent_suspension", "weight": 3},
    {"code": "surveillance_overdue", "rule": "surveillance_overdue", "weight": 2},
    {"code": "open_case", "rule": "open_case", "weight": 4},  # no member falls in it
]


def plan_row(bureau: dict, *, year: int = 2026, state: str = "drawn", **extra) -> InspectionPlan:
    return InspectionPlan(
        bureau_id=bureau["id"],
        bureau_path=bureau["path"],
        year=year,
        title=unique("抽查计划"),
        subject_type="certificate",
        pool_filter={},
        draw_share=0.1,
        strata=STRATA,
        seed=unique("seed"),
        state=state,
        drawn_on=date(year, 3, 2) if state != "draft" else None,
        created_by="test",
        **extra,
    )


async def draw_rows(registry, bureau: dict, plan: InspectionPlan, members: dict[str, list[int]], drawn, done):
    """Freeze ``members`` (stratum → subject ids) into the plan's pool, ordered by subject id, and
    make a task for each subject of ``drawn``, done for those of ``done``."""
    strata = {s: stratum for stratum, ids in members.items() for s in ids}
    pool = [
        PlanPoolMember(plan_id=plan.id, position=i, subject_id=s, stratum=strata[s])
        for i, s in enumerate(sorted(strata), start=1)
    ]
    tasks = [
        InspectionTask(
            plan_id=plan.id,
            draw_order=i,
            subject_type="certificate",
            subject_id=s,
            stratum=strata[s],
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            due_on=date(plan.year, 4, 1),
            state="done" if s in done else "open",
        )
        for i, s in enumerate(drawn, start=1)
    ]
    await store(registry, *pool, *tasks)
    async with registry.app.state.sessionmaker() as session:
        stored = await session.get(InspectionPlan, plan.id)
        stored.pool_size = len(pool)
        await session.commit()


async def direct_counts(registry, plan_id: int, stratum: str | None) -> dict[str, int]:
    """Pool members, tasks and tasks done of the plan (one stratum of it), counted directly."""
    member, task = PlanPoolMember, InspectionTask
    pool = select(func.count()).select_from(member).where(member.plan_id == plan_id)
    drawn = select(func.count()).select_from(task).where(task.plan_id == plan_id)
    if stratum is not None:
        pool = pool.where(member.stratum == stratum)
        drawn = drawn.where(task.stratum == stratum)
    async with registry.app.state.sessionmaker() as session:
        return {
            "pool_size": (await session.exec(pool)).scalar_one(),
            "drawn": (await session.exec(drawn)).scalar_one(),
            "done": (await session.exec(drawn.where(task.state == "done"))).scalar_one(),
        }


@pytest.fixture(scope="module")
async def world(registry, token_for):
    """A provincial unit of the module's own with a city under it and another province; two
    drawn plans of the unit for 2026 whose pools overlap, a plan of the city, a draft plan and a
    plan of another year."""
    national = token_for()
    unit = await create_provincial_unit(registry, national, "quality_supervision", pilot="none")
    city = await create_bureau(registry, national, unit, "city", "130100")
    other = await create_provincial_unit(registry, national, "quality_supervision", "150000", pilot="none")
    first, second, city_plan, draft, older = await store(
        registry,
        plan_row(unit),
        plan_row(unit),
        plan_row(city),
        plan_row(unit, state="draft"),
        plan_row(unit, year=2025),
    )
    # First plan: 10 recently suspended, 20 overdue, 70 base; 3 + 4 + 7 drawn, 2 + 1 + 3 done.
    await draw_rows(
        registry,
        unit,
        first,
        {
            "recent_suspension": list(range(1, 11)),
            "surveillance_overdue": list(range(11, 31)),
            "base": list(range(31, 101)),
        },
        drawn=[1, 2, 3, 11, 12, 13, 14, 31, 32, 33, 34, 35, 36, 37],
        done={1, 2, 11, 31, 32, 33},
    )
    # Second plan: subjects 1..5 again (recently suspended) and 200..209 (base); 5 + 2 drawn.
    await draw_rows(
        registry,
        unit,
        second,
        {"recent_suspension": list(range(1, 6)), "base": list(range(200, 210))},
        drawn=[1, 2, 3, 4, 5, 200, 201],
        done={3, 200},
    )
    await draw_rows(registry, city, city_plan, {"base": [500, 501, 502, 503]}, drawn=[500], done={500})
    await draw_rows(registry, unit, older, {"base": [1, 2]}, drawn=[1], done={1})
    return {
        "unit": unit,
        "city": city,
        "other": other,
        "first": first,
        "second": second,
        "city_plan": city_plan,
        "draft": draft,
        "older": older,
    }


def reader(token_for, bureau: dict, role: str = "supervision") -> dict[str, str]:
    return auth(token_for(bureau, roles=(role,)))


class TestPlanCoverage:
    async def test_every_stratum_equals_direct_counts(self, registry, token_for, world):
        plan = world["first"]
        response = await registry.get(f"{PLANS}/{plan.id}/coverage", headers=reader(token_for, world["unit"]))
        assert response.status_code == 200, response.text
        body = response.json()
        assert [s["stratum"] for s in body["strata"]] == [
            "recent_suspension",
            "surveillance_overdue",
            "open_case",
            "base",
        ]
        weights = {"recent_suspension": 3, "surveillance_overdue": 2, "open_case": 4, "base": 1}
        for stratum in body["strata"]:
            counts = await direct_counts(registry, plan.id, stratum["stratum"])
            assert {k: stratum[k] for k in counts} == counts
            assert stratum["weight"] == weights[stratum["stratum"]]
            if counts["pool_size"]:
                assert stratum["inclusion_probability"] == round(counts["drawn"] / counts["pool_size"], 6)
                assert stratum["inspected_share"] == round(counts["done"] / counts["pool_size"], 6)
        whole = await direct_counts(registry, plan.id, None)
        assert {k: body[k] for k in whole} == whole == {"pool_size": 100, "drawn": 14, "done": 6}
        assert body["sampling_fraction"] == 0.14 and body["inspected_share"] == 0.06
        assert (body["plan_id"], body["year"], body["state"]) == (plan.id, 2026, "drawn")

    async def test_the_figures_of_the_design(self, registry, token_for, world):
        response = await registry.get(
            f"{PLANS}/{world['first'].id}/coverage", headers=reader(token_for, world["unit"])
        )
        strata = {s["stratum"]: s for s in response.json()["strata"]}
        assert strata["recent_suspension"]["inclusion_probability"] == 0.3
        assert strata["surveillance_overdue"]["inclusion_probability"] == 0.2
        assert strata["base"]["inclusion_probability"] == 0.1
        assert strata["base"]["inspected_share"] == round(3 / 70, 6)
        empty = strata["open_case"]
        assert (empty["pool_size"], empty["drawn"], empty["inclusion_probability"]) == (0, 0, None)

    async def test_readable_from_the_province_above_the_city(self, registry, token_for, world):
        plan = world["city_plan"]
        response = await registry.get(f"{PLANS}/{plan.id}/coverage", headers=reader(token_for, world["unit"]))
        assert response.status_code == 200, response.text
        # Every declared stratum is shown, the empty ones too.
        strata = [(s["stratum"], s["pool_size"], s["drawn"]) for s in response.json()["strata"]]
        assert strata == [
            ("recent_suspension", 0, 0),
            ("surveillance_overdue", 0, 0),
            ("open_case", 0, 0),
            ("base", 4, 1),
        ]

    async def test_a_plan_not_drawn_has_no_coverage(self, registry, token_for, world):
        response = await registry.get(
            f"{PLANS}/{world['draft'].id}/coverage", headers=reader(token_for, world["unit"])
        )
        assert_problem(response, 409, "/problems/plan-not-drawn")

    async def test_out_of_scope_reads_as_missing(self, registry, token_for, world):
        other = await registry.get(
            f"{PLANS}/{world['first'].id}/coverage", headers=reader(token_for, world["other"])
        )
        below = await registry.get(
            f"{PLANS}/{world['first'].id}/coverage", headers=reader(token_for, world["city"])
        )
        missing = await registry.get(
            f"{PLANS}/{2**53 - 1}/coverage", headers=reader(token_for, world["unit"])
        )
        for response in (other, below, missing):
            assert_problem(response, 404, "/problems/not-found")

    async def test_a_token_is_needed(self, registry, world):
        response = await registry.get(f"{PLANS}/{world['first'].id}/coverage")
        assert response.status_code == 401


class TestYearCoverage:
    async def year(self, registry, token_for, world, **params) -> dict:
        params = {"year": 2026, "bureau_id": world["unit"]["id"], **params}
        response = await registry.get(COVERAGE, params=params, headers=reader(token_for, world["unit"]))
        assert response.status_code == 200, response.text
        return response.json()

    async def test_the_bureaus_drawn_plans_of_the_year(self, registry, token_for, world):
        body = await self.year(registry, token_for, world)
        assert [p["id"] for p in body["plans"]] == [world["first"].id, world["second"].id]
        for plan in body["plans"]:
            counts = await direct_counts(registry, plan["id"], None)
            assert {k: plan[k] for k in counts} == counts

    async def test_strata_sum_the_plans_direct_counts(self, registry, token_for, world):
        body = await self.year(registry, token_for, world)
        plans = (world["first"].id, world["second"].id)
        by_stratum = {s["stratum"]: s for s in body["strata"]}
        assert set(by_stratum) == {"recent_suspension", "surveillance_overdue", "base"}
        for code, stratum in by_stratum.items():
            counts = [await direct_counts(registry, p, code) for p in plans]
            pool = sum(c["pool_size"] for c in counts)
            drawn = sum(c["drawn"] for c in counts)
            assert stratum["pool_memberships"] == pool
            assert stratum["drawn"] == drawn
            assert stratum["done"] == sum(c["done"] for c in counts)
            assert stratum["plans"] == sum(1 for c in counts if c["pool_size"])
            assert stratum["inclusion_probability"] == round(drawn / pool, 6)
        suspended = by_stratum["recent_suspension"]
        # Subjects 1..5 sit in both plans: 10 distinct subjects, 1, 2 and 3 inspected.
        assert suspended["subjects"] == 10
        assert suspended["inspected_share"] == 0.3
        assert suspended["inclusion_probability"] == round(8 / 15, 6)

    async def test_each_subjects_chance_over_the_year(self, registry, token_for, world):
        (certificates,) = (await self.year(registry, token_for, world))["subjects"]
        # First plan: p = 0.3 (1..10), 0.2 (11..30), 0.1 (31..100); second: 1.0 (1..5), 0.2 (200..209).
        chances = {s: 0.3 for s in range(1, 11)} | {s: 0.2 for s in range(11, 31)}
        chances |= {s: 0.1 for s in range(31, 101)}
        chances |= {s: 1.0 for s in range(1, 6)} | {s: 0.2 for s in range(200, 210)}
        assert certificates["subject_type"] == "certificate"
        assert certificates["subjects"] == len(chances) == 110
        assert certificates["mean_chance_drawn"] == pytest.approx(
            round(math.fsum(chances.values()) / len(chances), 6), abs=1e-6
        )
        assert certificates["drawn_subjects"] == 14 + 4  # 1, 2, 3 drawn in both plans
        assert certificates["inspected_subjects"] == 6 + 2  # 3 and 200 inspected in the second
        assert certificates["inspected_share"] == round(8 / 110, 6)

    async def test_a_subject_in_two_plans_combines_its_chances(self, registry, token_for, world):
        # Subjects 6..10 in the first plan only (0.3); 1..5 certain in the second: 1 − 0.7 × 0 = 1.
        body = await self.year(registry, token_for, world)
        (certificates,) = body["subjects"]
        expected = (5 * 1.0 + 5 * 0.3 + 20 * 0.2 + 70 * 0.1 + 10 * 0.2) / 110
        assert certificates["mean_chance_drawn"] == pytest.approx(expected, abs=1e-6)

    async def test_the_subtree_counts_the_city_plan(self, registry, token_for, world):
        body = await self.year(registry, token_for, world, subtree="true")
        assert [p["id"] for p in body["plans"]] == [
            world["first"].id,
            world["second"].id,
            world["city_plan"].id,
        ]
        (certificates,) = body["subjects"]
        assert certificates["subjects"] == 114

    async def test_another_year(self, registry, token_for, world):
        body = await self.year(registry, token_for, world, year=2025)
        assert [p["id"] for p in body["plans"]] == [world["older"].id]
        assert body["strata"][0]["inclusion_probability"] == 0.5

    async def test_a_year_without_plans(self, registry, token_for, world):
        body = await self.year(registry, token_for, world, year=2030)
        assert body == {
            "year": 2030,
            "bureau_id": world["unit"]["id"],
            "subtree": False,
            "plans": [],
            "strata": [],
            "subjects": [],
        }

    async def test_the_principals_own_bureau_by_default(self, registry, token_for, world):
        response = await registry.get(
            COVERAGE, params={"year": 2026}, headers=reader(token_for, world["city"])
        )
        assert response.status_code == 200, response.text
        assert [p["id"] for p in response.json()["plans"]] == [world["city_plan"].id]

    async def test_a_bureau_out_of_scope_reads_as_missing(self, registry, token_for, world):
        for bureau, asked in ((world["other"], world["unit"]), (world["city"], world["unit"])):
            response = await registry.get(
                COVERAGE, params={"year": 2026, "bureau_id": asked["id"]}, headers=reader(token_for, bureau)
            )
            assert_problem(response, 404, "/problems/not-found")
        missing = await registry.get(
            COVERAGE, params={"year": 2026, "bureau_id": 2**53 - 1}, headers=reader(token_for, world["unit"])
        )
        assert_problem(missing, 404, "/problems/not-found")

    async def test_the_year_is_required(self, registry, token_for, world):
        response = await registry.get(COVERAGE, headers=reader(token_for, world["unit"]))
        assert response.status_code == 422


@pytest.fixture(scope="module")
async def drawn_plan(registry, token_for):
    """A province whose certificates fall in three strata — two suspended last year, two
    management-system certificates with their surveillance overdue, four others — and a plan of
    it drawn through the API."""
    national = token_for()
    unit = await create_provincial_unit(registry, national, "quality_supervision", pilot="none")
    for i in range(6):
        chain = await chain_of(registry, unit)
        if i < 2:
            await insert_row(
                registry,
                CertificateStatusChange,
                certificate_id=chain["certificate"].id,
                from_status="valid",
                to_status="suspended",
                reason="监督抽查不合格",
                actor_kind="officer",
                actor_id="t",
                changed_at=datetime(2025, 6, 1, tzinfo=UTC),
            )
        elif i < 4:
            await insert_certificate(
                registry,
                chain["body"].model_dump(),
                chain["enterprise"].model_dump(),
                issued_on=date(2023, 5, 1),
                expires_on=date(2026, 4, 30),
            )
    for _ in range(3):
        await create_officer(registry, national, unit, body="supervision")
    headers = reader(token_for, unit)
    body = {
        "year": 2026,
        "title": "2026年度认证证书双随机抽查",
        "subject_type": "certificate",
        "draw_count": 4,
        "strata": [
            {"code": "suspended", "rule": "recent_suspension", "weight": 3},
            {"code": "overdue", "rule": "surveillance_overdue", "weight": 2},
        ],
    }
    created = await registry.post(PLANS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    drawn = await registry.post(f"{PLANS}/{created.json()['id']}/draw", headers=headers)
    assert drawn.status_code == 200, drawn.text
    plan = drawn.json()
    return {"unit": unit, "plan": plan, "headers": headers}


class TestThroughTheDraw:
    async def test_a_drawn_plans_coverage_equals_its_allocation_and_direct_counts(self, registry, drawn_plan):
        plan = drawn_plan["plan"]
        response = await registry.get(f"{PLANS}/{plan['id']}/coverage", headers=drawn_plan["headers"])
        assert response.status_code == 200, response.text
        strata = {s["stratum"]: s for s in response.json()["strata"]}
        assert list(strata) == ["suspended", "overdue", "base"]
        assert [strata[h]["pool_size"] for h in strata] == [2, 2, 4]
        for code, stratum in strata.items():
            counts = await direct_counts(registry, plan["id"], code)
            assert {k: stratum[k] for k in counts} == counts
            allocated = plan["allocation"][code]
            assert (stratum["pool_size"], stratum["drawn"]) == (allocated["pool"], allocated["drawn"])
            assert stratum["inclusion_probability"] == round(allocated["drawn"] / allocated["pool"], 6)
            assert stratum["weight"] == allocated["weight"]

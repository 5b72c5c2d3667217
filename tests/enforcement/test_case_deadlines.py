"""A case's running deadlines: working days across the Spring Festival and its adjusted
working weekend, an excluded interval, and a year the calendar does not cover."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
from sqlalchemy import text

from services.common.dates import today
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, lead_step, new_lead, ok, open_case, read_case, step, subjects


def working_days_after(start: date, count: int) -> tuple[date, list[date]]:
    """The count-th working day after start by chinese-calendar, and the days passed over."""
    day, counted, skipped = start, 0, []
    while counted < count:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            counted += 1
        else:
            skipped.append(day)
    return day, skipped


async def deadlines(enforcement, person, path: str) -> dict:
    response = await enforcement.get(f"{API}/{path}/deadlines", headers=auth(person.token))
    assert response.status_code == 200, response.text
    return {d["rule"]: d for d in response.json()}


class TestAcrossTheSpringFestival:
    async def test_lead_decision_counts_working_days(self, enforcement, registry, world):
        # 2026: 15–23 February off, Saturdays 14 and 28 February worked (调休).
        assert chinese_calendar.is_workday(date(2026, 2, 14)) and not chinese_calendar.is_workday(
            date(2026, 2, 16)
        )
        chain = await subjects(registry, world)
        lead = await new_lead(
            enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"], received_on="2026-02-10"
        )
        due, skipped = working_days_after(date(2026, 2, 10), 15)
        found = (await deadlines(enforcement, world.head, f"leads/{lead['id']}"))["lead_decision"]
        assert found["due"] == due.isoformat()
        explanation = found["explanation"]
        assert explanation["start"] == "2026-02-10" and explanation["days"] == 15
        assert [d for d in explanation["skipped"]] == [d.isoformat() for d in skipped]
        assert "2026-02-14" not in explanation["skipped"]  # the adjusted Saturday counts

    async def test_extension_needs_the_head_and_stays_within_the_rule(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(
            enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"], received_on="2026-02-10"
        )
        refused = await lead_step(
            enforcement, world.officers[0], lead, "extend_lead_deadline", reason="r", extension_days=15
        )
        assert_problem(refused, 403, "/problems/role-required")
        too_long = await lead_step(
            enforcement,
            world.head,
            lead,
            "extend_lead_deadline",
            reason="检测",
            extension_days=16,
            occurred_on="2026-02-20",
        )
        assert_problem(too_long, 409, "/problems/extension-exceeded")
        extended = await lead_step(
            enforcement,
            world.head,
            lead,
            "extend_lead_deadline",
            reason="检测",
            extension_days=15,
            occurred_on="2026-02-20",
        )
        assert extended.status_code == 200, extended.text
        due, _ = working_days_after(date(2026, 2, 10), 30)
        assert extended.json()["next_due"] == due.isoformat()


class TestExcludedInterval:
    async def test_suspension_pauses_then_extends_the_decision_deadline(self, enforcement, registry, world):
        chain = await subjects(registry, world)
        lead = await new_lead(
            enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"], received_on="2026-03-01"
        )
        case = await open_case(enforcement, world, lead, on="2026-03-02")
        base = (await deadlines(enforcement, world.head, f"cases/{case['id']}"))["decision"]
        case = await ok(enforcement, world.officers[0], case, "start_investigation", occurred_on="2026-03-03")
        case = await ok(
            enforcement,
            world.head,
            case,
            "suspend_investigation",
            occurred_on="2026-03-10",
            reason="等待检测结果",
            suspension_kind="testing",
        )
        paused = (await deadlines(enforcement, world.head, f"cases/{case['id']}"))["decision"]
        assert paused["paused"] is True and paused["overdue"] is False
        assert (await read_case(enforcement, world.head, case))["next_due"] is None
        case = await ok(
            enforcement, world.head, case, "resume_investigation", occurred_on="2026-03-20", reason="检测完成"
        )
        resumed = (await deadlines(enforcement, world.head, f"cases/{case['id']}"))["decision"]
        # 10–19 March excluded: ten days added to a calendar-day deadline.
        assert resumed["explanation"]["excluded_days"] == 10
        expected = date(2026, 3, 2) + timedelta(days=90 + 10)
        while not chinese_calendar.is_workday(expected):  # a last day off moves to the next working day
            expected += timedelta(days=1)
        assert resumed["due"] == expected.isoformat() != base["due"]
        assert resumed["paused"] is False
        timeline = (
            await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(world.head.token))
        ).json()
        assert [e["step"] for e in timeline][-2:] == ["suspend_investigation", "resume_investigation"]


class TestUncoveredYear:
    """A step whose deadline reaches a year the calendar does not cover is refused until loaded."""

    @pytest.fixture
    async def next_year_unloaded(self, enforcement):
        last = max(chinese_calendar.constants.holidays).year
        year = last + 1
        if today() + timedelta(days=90) < date(year, 1, 1):
            pytest.skip(f"a decision deadline opened today ends before {year}")
        yield year
        async with enforcement.app.state.sessionmaker() as session:
            await session.execute(text("DELETE FROM calendar_year WHERE year = :y"), {"y": year})
            await session.commit()

    async def test_refused_then_accepted_once_loaded(
        self, enforcement, registry, world, token_for, next_year_unloaded
    ):
        year = next_year_unloaded
        chain = await subjects(registry, world)
        lead = await new_lead(
            enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"], received_on="2026-11-02"
        )
        opening = {
            "title": "t",
            "party_name": "p",
            "party_kind": "organisation",
            "officer_ids": [p.id for p in world.officers[:2]],
        }
        refused = await lead_step(enforcement, world.head, lead, "open_case", reason="r", case=opening)
        problem = assert_problem(refused, 409, "/problems/calendar-not-covered")
        assert problem["year"] == year
        again = (await enforcement.get(f"{API}/leads/{lead['id']}", headers=auth(world.head.token))).json()
        assert (again["state"], again["version"]) == ("verifying", lead["version"])
        load = await enforcement.put(
            f"{API}/calendar/{year}",
            json={
                "source": "国务院办公厅关于节假日安排的通知（测试）",
                "holidays": [{"date": f"{year}-01-01", "name": "元旦"}],
                "working_days": [],
            },
            headers=auth(token_for()),
        )
        assert load.status_code == 200, load.text
        opened = await lead_step(enforcement, world.head, lead, "open_case", reason="r", case=opening)
        assert opened.status_code == 200, opened.text
        case = (await enforcement.get(opened.headers["Location"], headers=auth(world.head.token))).json()
        assert case["next_due"].startswith(str(year))


async def test_stale_step_after_refusal_leaves_nothing(enforcement, registry, world):
    chain = await subjects(registry, world)
    lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
    case = await open_case(enforcement, world, lead)
    response = await step(
        enforcement,
        world.officers[0],
        case,
        "close_investigation",
        facts="f",
        legal_basis="b",
        violation_code="uncertified-ccc-product",
        penalties=[{"kind": "fine", "amount": "60000.00"}],
    )
    assert_problem(response, 409, "/problems/invalid-transition")

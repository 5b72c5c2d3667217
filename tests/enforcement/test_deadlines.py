"""Deadlines (办案期限): counting working and calendar days, roll-over, excluded periods,
extensions, working days before an event; the rule sets as versioned data; the preview route."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import chinese_calendar
import pytest

from services.enforcement.calendar import service
from services.enforcement.calendar.counting import (
    CalendarNotCovered,
    DayKind,
    ExcludedPeriod,
    WorkingCalendar,
    count_deadline,
)
from services.registry.models import NATIONAL_BUREAU_ID
from tests.conftest import assert_problem, auth
from tests.factories import audit_entries

RULES = "/api/v1/enforcement/deadline-rules"
CALENDAR = "/api/v1/enforcement/calendar"
SEED_SET = "samr-2022"
PROVINCIAL = {"id": 990002, "path": f"{NATIONAL_BUREAU_ID}.990002."}


def d(text: str) -> date:
    return date.fromisoformat(text)


def count(day_kind: str, days: int, start: str, **kwargs):
    return count_deadline(
        WorkingCalendar(), rule="r", rule_set="s", start=d(start), day_kind=day_kind, days=days, **kwargs
    )


def working_days_after(start: date, n: int) -> date:
    """A reference count straight from chinese-calendar."""
    day, counted = start, 0
    while counted < n:
        day += timedelta(days=1)
        counted += chinese_calendar.is_workday(day)
    return day


@pytest.fixture(scope="module", autouse=True)
def spring_festival_2026():
    # What the assertions below rely on, as chinese-calendar 1.11 has it: Saturdays 2026-02-14 and
    # 2026-02-28 worked (调休), 2026-02-15..23 off.
    assert chinese_calendar.is_workday(d("2026-02-14")) and chinese_calendar.is_workday(d("2026-02-28"))
    assert not any(chinese_calendar.is_workday(d("2026-02-15") + timedelta(days=i)) for i in range(9))
    assert chinese_calendar.is_workday(d("2026-02-24"))


class TestWorkingDays:
    def test_across_the_spring_festival(self):
        deadline = count("working", 5, "2026-02-10")
        # 11, 12, 13, Saturday 14 (worked), then nine days off, then 24.
        assert deadline.due == d("2026-02-24")
        assert deadline.skipped == [d("2026-02-15") + timedelta(days=i) for i in range(9)]
        assert deadline.rolled_over_from is None and deadline.excluded_days == 0

    def test_an_adjusted_working_saturday_counts(self):
        assert count("working", 4, "2026-02-24").due == d("2026-02-28")

    def test_agrees_with_chinese_calendar_over_a_year(self):
        start = d("2025-01-20")
        for n in (1, 5, 10, 15, 20, 30):
            assert count("working", n, str(start)).due == working_days_after(start, n)

    def test_starting_day_not_counted(self):
        assert count("working", 1, "2026-03-02").due == d("2026-03-03")


class TestCalendarDays:
    def test_last_day_on_a_holiday_rolls_over(self):
        deadline = count("calendar", 15, "2026-01-31")
        assert deadline.rolled_over_from == d("2026-02-15")
        assert deadline.due == d("2026-02-24")
        assert deadline.skipped[0] == d("2026-02-15") and deadline.skipped[-1] == d("2026-02-23")

    def test_last_day_on_an_adjusted_working_saturday_stands(self):
        deadline = count("calendar", 15, "2026-01-30")
        assert (
            deadline.due == d("2026-02-14") and deadline.rolled_over_from is None and deadline.skipped == []
        )

    def test_last_day_on_a_plain_weekend_rolls_over(self):
        deadline = count("calendar", 20, "2026-03-02")  # Sunday 2026-03-22
        assert (deadline.rolled_over_from, deadline.due) == (d("2026-03-22"), d("2026-03-23"))

    def test_a_year_nobody_covers_is_refused_with_it(self):
        with pytest.raises(CalendarNotCovered) as refused:
            count("calendar", 90, "2026-11-15")
        assert refused.value.year == 2027


class TestExcludedPeriods:
    def test_closed_period_moves_a_calendar_deadline(self):
        suspended = ExcludedPeriod("investigation_suspended", d("2026-03-05"), d("2026-03-07"))
        deadline = count("calendar", 15, "2026-03-02", excluded=[suspended])
        assert deadline.due == d("2026-03-20")  # 17 March + 3 days
        assert deadline.excluded_days == 3 and not deadline.paused

    def test_excluded_working_days_do_not_count(self):
        testing = ExcludedPeriod("testing", d("2026-03-04"), d("2026-03-05"))
        deadline = count("working", 5, "2026-03-02", excluded=[testing])
        assert deadline.due == d("2026-03-11")  # 3, 6, 9, 10, 11
        assert deadline.excluded_days == 2
        assert deadline.skipped == [d("2026-03-07"), d("2026-03-08")]

    def test_days_up_to_the_start_do_not_count(self):
        earlier = ExcludedPeriod("hearing", d("2026-02-25"), d("2026-03-02"))
        deadline = count("calendar", 15, "2026-03-02", excluded=[earlier])
        assert deadline.due == d("2026-03-17") and deadline.excluded_days == 0

    def test_overlapping_periods_count_once(self):
        periods = [
            ExcludedPeriod("hearing", d("2026-03-05"), d("2026-03-07")),
            ExcludedPeriod("public_notice", d("2026-03-06"), d("2026-03-08")),
        ]
        deadline = count("calendar", 14, "2026-03-02", excluded=periods)
        assert deadline.excluded_days == 4
        assert deadline.due == d("2026-03-20")  # 16 March + 4 days

    def test_open_period_pauses_the_deadline_as_of_a_day(self):
        running = ExcludedPeriod("investigation_suspended", d("2026-03-05"), None)
        deadline = count("calendar", 15, "2026-03-02", excluded=[running], as_of=d("2026-03-09"))
        assert deadline.paused and deadline.as_of == d("2026-03-09")
        assert deadline.excluded_days == 5
        # 17 March + 5 days is Sunday 22 March: rolled over to Monday.
        assert (deadline.rolled_over_from, deadline.due) == (d("2026-03-22"), d("2026-03-23"))
        assert deadline.explain()["excluded"] == [
            {"kind": "investigation_suspended", "start": "2026-03-05", "end": None}
        ]

    def test_open_period_not_yet_begun_does_not_pause(self):
        later = ExcludedPeriod("testing", d("2026-03-10"), None)
        deadline = count("calendar", 15, "2026-03-02", excluded=[later], as_of=d("2026-03-09"))
        assert not deadline.paused and deadline.due == d("2026-03-17")

    def test_period_ending_before_it_starts_is_refused(self):
        with pytest.raises(ValueError):
            ExcludedPeriod("testing", d("2026-03-10"), d("2026-03-09"))


class TestExtensionAndWorkingBefore:
    def test_extension_adds_days_of_the_rule_kind(self):
        deadline = count("working", 3, "2026-03-02", extension_days=2)
        assert deadline.due == d("2026-03-09") and deadline.extension_days == 2
        assert count("calendar", 10, "2026-03-02", extension_days=5).due == d("2026-03-17")

    def test_working_days_before_an_event(self):
        deadline = count("working_before", 7, "2026-03-16")  # a hearing on Monday 16 March
        assert deadline.due == d("2026-03-05")
        assert deadline.day_kind is DayKind.WORKING_BEFORE

    def test_working_days_before_across_the_spring_festival(self):
        deadline = count("working_before", 3, "2026-02-25")
        # 24, then nine days off, Saturday 14 (worked), 13.
        assert deadline.due == d("2026-02-13")
        assert len(deadline.skipped) == 9


class TestComputeDeadline:
    """The public API, on the database's rule set and calendar."""

    async def test_rule_from_the_seeded_set(self, enforcement):
        async with enforcement.app.state.sessionmaker() as session:
            assert await service.CURRENT_RULE_SET(session) == SEED_SET
            rule = await service.deadline_rule(session, "lead_decision")
            deadline = await service.compute_deadline(
                session, "lead_decision", d("2026-03-02"), extension_days=rule.extension_days
            )
            assert deadline.rule_set == SEED_SET and deadline.day_kind is DayKind.WORKING
            assert deadline.due == working_days_after(d("2026-03-02"), rule.days + rule.extension_days)
            assert await service.is_working_day(session, d("2026-02-14"))
            assert not await service.is_working_day(session, d("2026-02-17"))

    async def test_unknown_rule(self, enforcement):
        async with enforcement.app.state.sessionmaker() as session:
            with pytest.raises(service.DeadlineRuleNotFound):
                await service.deadline_rule(session, "no_such_rule")

    async def test_open_period_counts_to_today_by_default(self, enforcement):
        start = service.shanghai_today() - timedelta(days=10)
        running = ExcludedPeriod("investigation_suspended", start + timedelta(days=1), None)
        async with enforcement.app.state.sessionmaker() as session:
            try:
                deadline = await service.compute_deadline(session, "payment", start, excluded=[running])
            except CalendarNotCovered:
                pytest.skip("today's deadline reaches a year no calendar covers")
        assert deadline.paused and deadline.as_of == service.shanghai_today()
        assert deadline.excluded_days == 10


class TestDuePreview:
    async def test_explanation(self, enforcement, token_for):
        headers = auth(token_for(PROVINCIAL, roles=("enforcement",)))
        resp = await enforcement.get(
            f"{RULES}/payment/due",
            params={"start": "2026-01-31", "excluded": ["hearing:2026-02-02/2026-02-03"]},
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # 15 days + 2 excluded from 31 January is Tuesday 17 February, off: rolled over to the 24th.
        assert body == {
            "rule": "payment",
            "rule_set": SEED_SET,
            "start": "2026-01-31",
            "day_kind": "calendar",
            "days": 15,
            "extension_days": 0,
            "excluded": [{"kind": "hearing", "start": "2026-02-02", "end": "2026-02-03"}],
            "excluded_days": 2,
            "skipped": [f"2026-02-{day}" for day in range(17, 24)],
            "rolled_over_from": "2026-02-17",
            "paused": False,
            "as_of": None,
            "due": "2026-02-24",
            "extension_allowed": None,
            "extension_needs": "",
        }

    async def test_extension_and_open_period(self, enforcement, token_for):
        resp = await enforcement.get(
            f"{RULES}/decision/due",
            params={
                "start": "2026-03-02",
                "extension_days": 30,
                "excluded": ["2026-03-10/.."],
                "as_of": "2026-03-19",
            },
            headers=auth(token_for(roles=("legal",))),
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["paused"] and body["as_of"] == "2026-03-19" and body["excluded_days"] == 10
        assert body["extension_days"] == 30 and body["extension_allowed"] == 30
        assert body["excluded"] == [{"kind": "excluded", "start": "2026-03-10", "end": None}]
        # 120 days after 2 March is 30 June; + 10 excluded days is 10 July, a Friday.
        assert body["due"] == "2026-07-10" and body["rolled_over_from"] is None

    async def test_uncovered_year_refused_until_loaded(self, enforcement, token_for):
        # Years 2041 and 2042 are this test's own.
        headers = auth(token_for(roles=("enforcement",)))
        admin = auth(token_for(roles=("admin",)))
        preview = f"{RULES}/closing/due"
        params = {"start": "2041-12-20"}
        problem = assert_problem(
            await enforcement.get(preview, params=params, headers=headers),
            409,
            "/problems/calendar-not-covered",
        )
        assert problem["year"] == 2041 and "PUT /api/v1/enforcement/calendar/2041" in problem["detail"]

        load = {"source": "test notice 2041", "holidays": [{"date": "2041-01-01", "name": "New Year's Day"}]}
        assert (await enforcement.put(f"{CALENDAR}/2041", json=load, headers=admin)).status_code == 200
        # The count reaches into 2042, which nobody covers yet.
        problem = assert_problem(
            await enforcement.get(preview, params=params, headers=headers),
            409,
            "/problems/calendar-not-covered",
        )
        assert problem["year"] == 2042

        load = {
            "source": "test notice 2042",
            "holidays": [
                {"date": "2042-01-01", "name": "New Year's Day"},
                {"date": "2042-01-02", "name": "New Year's Day"},
            ],
            "working_days": [{"date": "2042-01-04", "name": "New Year's Day"}],
        }
        assert (await enforcement.put(f"{CALENDAR}/2042", json=load, headers=admin)).status_code == 200
        resp = await enforcement.get(preview, params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # Dec 23–27, 30, 31 (7); Jan 3, Saturday 4 (worked), 6–10 (14); 13 (15).
        assert body["due"] == "2042-01-13"
        assert "2042-01-01" in body["skipped"] and "2042-01-04" not in body["skipped"]

    async def test_unknown_rule_and_rule_set(self, enforcement, token_for):
        headers = auth(token_for())
        resp = await enforcement.get(
            f"{RULES}/no_such_rule/due", params={"start": "2026-03-02"}, headers=headers
        )
        assert assert_problem(resp, 404, "/problems/not-found")["rule"] == "no_such_rule"
        resp = await enforcement.get(
            f"{RULES}/closing/due", params={"start": "2026-03-02", "rule_set": "nope"}, headers=headers
        )
        assert_problem(resp, 404, "/problems/not-found")

    @pytest.mark.parametrize(
        "params",
        [
            {"start": "2026-03-02", "excluded": ["2026-03-10"]},
            {"start": "2026-03-02", "excluded": ["2026-03-10/2026-03-09"]},
            {"start": "2026-03-02", "excluded": ["2026-02-30/2026-03-09"]},
            {"start": "2026-03-02", "extension_days": -1},
            {"start": "02/03/2026"},
            {},
        ],
    )
    async def test_bad_query(self, enforcement, token_for, params):
        resp = await enforcement.get(f"{RULES}/closing/due", params=params, headers=auth(token_for()))
        assert_problem(resp, 422, "/problems/validation-error")


class TestRuleSets:
    async def seed_rules(self, enforcement, token_for) -> list[dict]:
        resp = await enforcement.get(RULES, params={"rule_set": SEED_SET}, headers=auth(token_for()))
        assert resp.status_code == 200, resp.text
        return resp.json()["rules"]

    async def test_read_the_seeded_set(self, enforcement, token_for):
        resp = await enforcement.get(RULES, headers=auth(token_for(PROVINCIAL, roles=("enforcement",))))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["code"] == SEED_SET and body["current"] and SEED_SET in body["rule_sets"]
        decision = next(r for r in body["rules"] if r["code"] == "decision")
        assert (decision["days"], decision["day_kind"], decision["extension_days"]) == (90, "calendar", 30)
        before = next(r for r in body["rules"] if r["code"] == "hearing_notice_to_party")
        assert before["day_kind"] == "working_before"

    async def test_a_later_set_is_used_when_named_and_from_its_day(self, enforcement, token_for):
        rules = await self.seed_rules(enforcement, token_for)
        code = f"test-{uuid.uuid4().hex[:10]}"
        changed = [{**r, "days": 60} if r["code"] == "decision" else r for r in rules]
        data = {"code": code, "title": "A later text", "effective_from": "2046-01-01", "rules": changed}
        resp = await enforcement.post(RULES, json=data, headers=auth(token_for()))
        assert resp.status_code == 201, resp.text
        assert resp.json()["code"] == code and not resp.json()["current"]
        assert resp.json()["effective_from"] == "2046-01-01"
        entries = await audit_entries(enforcement, "deadline_rule_set", code)
        assert [e["action"] for e in entries] == ["deadline_rule_set.created"]
        # Not in force yet: today's cases keep the seeded set.
        current = await enforcement.get(RULES, headers=auth(token_for()))
        assert current.json()["code"] != code
        due = await enforcement.get(
            f"{RULES}/decision/due",
            params={"start": "2026-03-02", "rule_set": code},
            headers=auth(token_for()),
        )
        assert due.json()["days"] == 60 and due.json()["rule_set"] == code
        async with enforcement.app.state.sessionmaker() as session:
            assert await service.current_rule_set(session, d("2046-01-01")) == code
            assert await service.current_rule_set(session, d("2045-12-31")) != code

    async def test_code_taken(self, enforcement, token_for):
        rules = await self.seed_rules(enforcement, token_for)
        data = {"code": SEED_SET, "title": "again", "effective_from": "2046-06-01", "rules": rules}
        resp = await enforcement.post(RULES, json=data, headers=auth(token_for()))
        assert_problem(resp, 409, "/problems/rule-set-exists")

    async def test_missing_and_duplicate_rules_refused(self, enforcement, token_for):
        rules = await self.seed_rules(enforcement, token_for)
        code = f"test-{uuid.uuid4().hex[:10]}"
        data = {"code": code, "title": "x", "effective_from": "2046-06-01", "rules": [*rules[1:], rules[1]]}
        resp = await enforcement.post(RULES, json=data, headers=auth(token_for()))
        problem = assert_problem(resp, 422, "/problems/validation-error")
        assert {e["type"] for e in problem["errors"]} == {"rule_missing", "duplicate_rule"}
        resp = await enforcement.get(RULES, params={"rule_set": code}, headers=auth(token_for()))
        assert_problem(resp, 404, "/problems/not-found")

    async def test_in_force_in_the_past_refused(self, enforcement, token_for):
        rules = await self.seed_rules(enforcement, token_for)
        data = {
            "code": f"test-{uuid.uuid4().hex[:10]}",
            "title": "x",
            "effective_from": "2020-01-01",
            "rules": rules,
        }
        resp = await enforcement.post(RULES, json=data, headers=auth(token_for()))
        problem = assert_problem(resp, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.effective_from"

    @pytest.mark.parametrize(
        "bad",
        [
            {"days": 0},
            {"day_kind": "weeks"},
            {"code": "Bad Code"},
            {"extension_days": -5},
            {"unexpected": True},
        ],
    )
    async def test_malformed_rule_refused(self, enforcement, token_for, bad):
        rules = await self.seed_rules(enforcement, token_for)
        data = {
            "code": f"test-{uuid.uuid4().hex[:10]}",
            "title": "x",
            "effective_from": "2046-06-01",
            "rules": [{**rules[0], **bad}, *rules[1:]],
        }
        resp = await enforcement.post(RULES, json=data, headers=auth(token_for()))
        assert_problem(resp, 422, "/problems/validation-error")

    @pytest.mark.parametrize(("bureau", "roles"), [(None, ("legal",)), (PROVINCIAL, ("admin",))])
    async def test_only_national_administrators(self, enforcement, token_for, bureau, roles):
        rules = await self.seed_rules(enforcement, token_for)
        data = {
            "code": f"test-{uuid.uuid4().hex[:10]}",
            "title": "x",
            "effective_from": "2046-06-01",
            "rules": rules,
        }
        resp = await enforcement.post(RULES, json=data, headers=auth(token_for(bureau, roles=roles)))
        assert_problem(resp, 403, "/problems/role-required")

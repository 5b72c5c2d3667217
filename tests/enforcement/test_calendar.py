"""The working-day calendar (工作日): chinese-calendar's years, years loaded by a national
administrator, and the refusal to guess a year nobody covers."""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from services.enforcement.calendar.counting import (
    CalendarNotCovered,
    LoadedYear,
    WorkingCalendar,
    builtin_year_days,
    builtin_years,
)
from services.registry.models import NATIONAL_BUREAU_ID
from tests.conftest import assert_problem, auth
from tests.factories import audit_entries

CALENDAR = "/api/v1/enforcement/calendar"
PROVINCIAL = {"id": 990001, "path": f"{NATIONAL_BUREAU_ID}.990001."}

# Years this module loads: no other test uses them (tests share one database).
YEAR_LOADED = 2043
YEAR_BAD = 2044
YEAR_REFUSED = 2045


def year_2043() -> dict:
    # 2043-02-10 is a Tuesday; the adjusted working days are the Saturday before and after.
    return {
        "source": "国务院办公厅关于2043年部分节假日安排的通知 (test)",
        "holidays": [{"date": f"2043-02-{d:02d}", "name": "Spring Festival"} for d in range(9, 16)]
        + [{"date": "2043-01-01", "name": "New Year's Day"}],
        "working_days": [
            {"date": "2043-02-07", "name": "Spring Festival"},
            {"date": "2043-02-21", "name": "Spring Festival"},
        ],
    }


class TestWorkingCalendar:
    def test_builtin_years_are_those_of_the_installed_package(self):
        years = builtin_years()
        with pytest.raises(NotImplementedError):
            chinese_calendar.is_workday(date(years[-1] + 1, 6, 1))
        chinese_calendar.is_workday(date(years[-1], 6, 1))
        assert years[0] <= 2008 and years[-1] >= 2025

    def test_spring_festival_2026_from_chinese_calendar(self):
        calendar = WorkingCalendar()
        holidays, working = builtin_year_days(2026)
        # Verified in chinese-calendar 1.11: 2026-02-15..23 off, Saturdays 2026-02-14 and 02-28 worked.
        assert working[date(2026, 2, 14)] == working[date(2026, 2, 28)] == "Spring Festival"
        assert all(holidays[date(2026, 2, d)] == "Spring Festival" for d in range(15, 24))
        assert calendar.is_working(date(2026, 2, 14))  # a Saturday worked (调休上班)
        assert not calendar.is_working(date(2026, 2, 17))  # a Tuesday off
        assert not calendar.is_working(date(2026, 3, 7))  # an ordinary Saturday

    def test_a_year_nobody_covers_is_never_guessed(self):
        year = builtin_years()[-1] + 1
        with pytest.raises(CalendarNotCovered) as refused:
            WorkingCalendar().is_working(date(year, 3, 3))
        assert refused.value.year == year
        assert refused.value.extra["year"] == year

    def test_a_loaded_year_counts(self):
        loaded = LoadedYear(
            year=2043,
            holidays={date(2043, 2, 10): "Spring Festival"},
            working_days=frozenset({date(2043, 2, 7)}),
        )
        calendar = WorkingCalendar([loaded])
        assert not calendar.is_working(date(2043, 2, 10))  # Tuesday off
        assert calendar.is_working(date(2043, 2, 7))  # Saturday worked
        assert not calendar.is_working(date(2043, 2, 14))  # plain Saturday
        assert calendar.is_working(date(2043, 2, 11))  # plain Wednesday


class TestReadCalendar:
    async def test_coverage_lists_builtin_years(self, enforcement, token_for):
        resp = await enforcement.get(CALENDAR, headers=auth(token_for(PROVINCIAL, roles=("enforcement",))))
        assert resp.status_code == 200, resp.text
        years = {y["year"]: y for y in resp.json()["years"]}
        assert years[2026]["source"] == "chinese-calendar"
        assert resp.json()["chinese_calendar_version"] == chinese_calendar.__version__

    async def test_builtin_year(self, enforcement, token_for):
        resp = await enforcement.get(f"{CALENDAR}/2026", headers=auth(token_for(roles=("legal",))))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["source"] == "chinese-calendar"
        assert {"date": "2026-02-14", "name": "Spring Festival"} in body["working_days"]
        assert {"date": "2026-02-17", "name": "Spring Festival"} in body["holidays"]

    async def test_uncovered_year_is_not_found_with_the_year(self, enforcement, token_for):
        resp = await enforcement.get(f"{CALENDAR}/2077", headers=auth(token_for()))
        problem = assert_problem(resp, 404, "/problems/not-found")
        assert problem["year"] == 2077
        assert "PUT /api/v1/enforcement/calendar/2077" in problem["detail"]

    async def test_needs_a_token(self, enforcement):
        assert_problem(await enforcement.get(CALENDAR), 401, "/problems/unauthorized")


class TestLoadYear:
    async def test_load_then_replace(self, enforcement, token_for):
        admin = auth(token_for(roles=("admin",)))
        resp = await enforcement.put(f"{CALENDAR}/{YEAR_LOADED}", json=year_2043(), headers=admin)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["source"] == "loaded" and body["loaded_by"]
        assert len(body["holidays"]) == 8 and body["holidays"][0] == {
            "date": "2043-01-01",
            "name": "New Year's Day",
        }
        assert [d["date"] for d in body["working_days"]] == ["2043-02-07", "2043-02-21"]

        listed = await enforcement.get(CALENDAR, headers=admin)
        entry = next(y for y in listed.json()["years"] if y["year"] == YEAR_LOADED)
        assert entry["source"] == "loaded" and entry["notice"].startswith("国务院办公厅")

        replaced = {**year_2043(), "working_days": []}
        resp = await enforcement.put(f"{CALENDAR}/{YEAR_LOADED}", json=replaced, headers=admin)
        assert resp.status_code == 200, resp.text
        read = await enforcement.get(f"{CALENDAR}/{YEAR_LOADED}", headers=admin)
        assert read.json()["working_days"] == [] and len(read.json()["holidays"]) == 8
        entries = await audit_entries(enforcement, "calendar_year", YEAR_LOADED)
        assert [e["action"] for e in entries] == ["calendar.year.loaded"] * 2
        assert entries[0]["data"]["working_days"][0] == {"date": "2043-02-07", "name": "Spring Festival"}

    async def test_builtin_year_refused(self, enforcement, token_for):
        data = {
            **year_2043(),
            "holidays": [{"date": "2026-10-01", "name": "National Day"}],
            "working_days": [],
        }
        resp = await enforcement.put(f"{CALENDAR}/2026", json=data, headers=auth(token_for()))
        problem = assert_problem(resp, 409, "/problems/calendar-year-built-in")
        assert problem["year"] == 2026

    @pytest.mark.parametrize(
        ("holidays", "working_days", "loc", "kind"),
        [
            ([("2043-05-01", "Labour Day")], [], "body.holidays.0.date", "date_outside_year"),
            (
                [("2044-05-01", "Labour Day"), ("2044-05-01", "Labour Day")],
                [],
                "body.holidays.1.date",
                "duplicate_date",
            ),
            (
                [("2044-05-01", "Labour Day")],
                [("2044-05-01", "Labour Day")],
                "body.working_days.0.date",
                "holiday_and_working_day",
            ),
            # 2044-05-03 is a Tuesday: a working day anyway.
            (
                [("2044-05-02", "Labour Day")],
                [("2044-05-03", "Labour Day")],
                "body.working_days.0.date",
                "not_a_weekend",
            ),
        ],
    )
    async def test_bad_days_refused_and_nothing_written(
        self, enforcement, token_for, holidays, working_days, loc, kind
    ):
        data = {
            "source": "test notice",
            "holidays": [{"date": d, "name": n} for d, n in holidays],
            "working_days": [{"date": d, "name": n} for d, n in working_days],
        }
        resp = await enforcement.put(f"{CALENDAR}/{YEAR_BAD}", json=data, headers=auth(token_for()))
        problem = assert_problem(resp, 422, "/problems/validation-error")
        assert {"loc": loc, "type": kind} in [{"loc": e["loc"], "type": e["type"]} for e in problem["errors"]]
        read = await enforcement.get(f"{CALENDAR}/{YEAR_BAD}", headers=auth(token_for()))
        assert_problem(read, 404, "/problems/not-found")

    @pytest.mark.parametrize(
        "data",
        [
            {"source": "x", "holidays": []},  # a year without a holiday is not a notice
            {"source": "x", "holidays": [{"date": "2044-13-01", "name": "x"}]},
            {"source": "x", "holidays": [{"date": 20440101, "name": "x"}]},
            {"source": "", "holidays": [{"date": "2044-01-01", "name": "x"}]},
            {"source": "x", "holidays": [{"date": "2044-01-01", "name": "x"}], "extra": 1},
        ],
    )
    async def test_malformed_load_refused(self, enforcement, token_for, data):
        resp = await enforcement.put(f"{CALENDAR}/{YEAR_BAD}", json=data, headers=auth(token_for()))
        assert_problem(resp, 422, "/problems/validation-error")
        read = await enforcement.get(f"{CALENDAR}/{YEAR_BAD}", headers=auth(token_for()))
        assert_problem(read, 404, "/problems/not-found")

    @pytest.mark.parametrize(
        ("bureau", "roles"),
        [
            (None, ("enforcement",)),  # national, not an administrator
            (None, ("head", "legal")),
            (PROVINCIAL, ("admin",)),  # an administrator, not of the national regulator
        ],
    )
    async def test_only_national_administrators(self, enforcement, token_for, bureau, roles):
        data = {
            **year_2043(),
            "holidays": [{"date": "2045-01-01", "name": "New Year's Day"}],
            "working_days": [],
        }
        resp = await enforcement.put(
            f"{CALENDAR}/{YEAR_REFUSED}", json=data, headers=auth(token_for(bureau, roles=roles))
        )
        assert_problem(resp, 403, "/problems/role-required")
        read = await enforcement.get(f"{CALENDAR}/{YEAR_REFUSED}", headers=auth(token_for()))
        assert_problem(read, 404, "/problems/not-found")

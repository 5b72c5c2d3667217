"""Statistical reports (认证执法统计报表): generated from the aggregates, submitted and frozen,
corrected by a new revision, rolled up from the subordinate bureaus' submissions, late ones
alerted."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from services.common.auth import Role
from services.statistics.reports.periods import Period, overdue_periods, parse_period
from services.statistics.reports.service import late_report_alerts
from tests.conftest import assert_problem, auth
from tests.factories import audit_entries, same_problem
from tests.statistics.reporting import FIGURES, as_list, make_tree, set_figures

BASE = "/api/v1/statistics/reports"


@pytest.fixture
async def tree(registry, statistics, token_for, world):
    return await make_tree(registry, statistics, token_for, world)


async def generate(statistics, tree, bureau, period="2026-03", **headers):
    response = await statistics.post(
        BASE, json={"bureau_id": bureau["id"], "period": period}, headers=headers or tree.headers(bureau)
    )
    assert response.status_code == 201, response.text
    return response


async def submit(statistics, tree, bureau, report_id):
    read = await statistics.get(f"{BASE}/{report_id}", headers=tree.headers(bureau))
    response = await statistics.post(
        f"{BASE}/{report_id}/submission", headers={**tree.headers(bureau), "If-Match": read.headers["ETag"]}
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestPeriods:
    def test_deadlines_are_data(self):
        assert parse_period("2026-03").due == date(2026, 4, 10)
        assert parse_period("2026-12").due == date(2027, 1, 10)
        assert parse_period("2026-Q2").due == date(2026, 7, 15)
        assert parse_period("2026-Q4").due == date(2027, 1, 15)
        assert parse_period("2026").due == date(2027, 1, 31)

    def test_period_keys(self):
        assert parse_period("2026-Q3") == Period(2026, 7, 3)
        assert parse_period("2026-Q3").end == date(2026, 9, 30)
        assert [p.key for p in parse_period("2026-05").trend()] == [f"2026-0{m}" for m in range(1, 6)]
        for bad in ("2026-13", "2026-Q5", "2026-1", "26", "2026-00", "2026-05 ", "9999", "0000-01", "2100"):
            with pytest.raises(ValueError):
                parse_period(bad)

    def test_overdue_periods_start_at_the_first_reporting_period(self):
        keys = [p.key for p in overdue_periods(date(2026, 4, 16))]
        assert keys == ["2026-01", "2026-02", "2026-03", "2026-Q1"]
        assert "2026-03" not in [p.key for p in overdue_periods(date(2026, 4, 10))]  # due day: on time


class TestGenerate:
    async def test_a_draft_copies_the_aggregates_ordered_by_measure(self, statistics, tree):
        county = tree.counties[0]
        await set_figures(statistics, county, "2026-03", FIGURES)
        await set_figures(statistics, county, "2026-04", {("cases_opened", "all", ""): 99})
        response = await generate(statistics, tree, county)
        report = response.json()
        assert response.headers["Location"] == f"{BASE}/{report['id']}"
        assert response.headers["ETag"].startswith('"')
        assert (report["state"], report["revision"], report["period_kind"]) == ("draft", 1, "month")
        assert report["due_on"] == "2026-04-10"
        assert report["figures"] == as_list(FIGURES)
        assert report["rollup"] is None  # a county has no subordinate bureau
        assert report["bureau_name"] == county["name"]
        entries = await audit_entries(statistics, "statistical_report", report["id"])
        assert [e["action"] for e in entries] == ["generate"]

    async def test_one_draft_at_a_time_then_correct_instead(self, statistics, tree):
        county = tree.counties[0]
        first = (await generate(statistics, tree, county, "2026-02")).json()
        again = await statistics.post(
            BASE, json={"bureau_id": county["id"], "period": "2026-02"}, headers=tree.headers(county)
        )
        assert assert_problem(again, 409, "/problems/report-draft-exists")["report_id"] == first["id"]
        await submit(statistics, tree, county, first["id"])
        after = await statistics.post(
            BASE, json={"bureau_id": county["id"], "period": "2026-02"}, headers=tree.headers(county)
        )
        assert_problem(after, 409, "/problems/report-already-submitted")

    async def test_two_drafts_at_once_make_one(self, statistics, tree):
        import asyncio

        county = tree.counties[1]
        body = {"bureau_id": county["id"], "period": "2026-08"}
        answers = await asyncio.gather(
            *(statistics.post(BASE, json=body, headers=tree.headers(county)) for _ in range(4))
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
        for refused in (a for a in answers if a.status_code == 409):
            assert_problem(refused, 409, "/problems/report-draft-exists")

    async def test_an_idempotency_key_replays_the_draft(self, statistics, tree):
        county = tree.counties[0]
        headers = {**tree.headers(county), "Idempotency-Key": f"report-{county['id']}-2026-09"}
        body = {"bureau_id": county["id"], "period": "2026-09"}
        first = await statistics.post(BASE, json=body, headers=headers)
        again = await statistics.post(BASE, json=body, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.json()["id"] == first.json()["id"]
        assert again.headers.get("Idempotent-Replayed") == "true"
        other = await statistics.post(BASE, json={**body, "period": "2026-10"}, headers=headers)
        assert_problem(other, 422, "/problems/idempotency-key-reused")

    async def test_a_bureau_reports_for_itself(self, statistics, tree):
        county = tree.counties[0]
        # The city's legal officer has the county in scope, but the report is the county's own.
        response = await statistics.post(
            BASE, json={"bureau_id": county["id"], "period": "2026-03"}, headers=tree.headers(tree.city)
        )
        assert_problem(response, 403, "/problems/report-of-another-bureau")

    @pytest.mark.parametrize(
        "roles", [(Role.ENFORCEMENT,), (Role.HEAD,), (Role.SUPERVISION,), (Role.SYSTEM,)]
    )
    async def test_only_legal_affairs_or_the_administrator_writes(self, statistics, tree, roles):
        county = tree.counties[0]
        response = await statistics.post(
            BASE, json={"bureau_id": county["id"], "period": "2026-03"}, headers=tree.headers(county, *roles)
        )
        assert_problem(response, 403, "/problems/role-required")

    async def test_the_administrator_may_generate(self, statistics, tree):
        county = tree.counties[1]
        await generate(statistics, tree, county, "2026-01", **tree.headers(county, Role.ADMIN))

    async def test_no_token(self, statistics, tree):
        response = await statistics.post(BASE, json={"bureau_id": tree.city["id"], "period": "2026-03"})
        assert_problem(response, 401, "/problems/unauthorized")

    @pytest.mark.parametrize(
        "body",
        [
            {"bureau_id": 1, "period": "2026-13"},
            {"bureau_id": 1, "period": "2026-Q0"},
            {"bureau_id": 1, "period": "26-01"},
            {"bureau_id": 1, "period": 202601},
            {"bureau_id": "1", "period": "2026-01"},
            {"bureau_id": 0, "period": "2026-01"},
            {"period": "2026-01"},
            {"bureau_id": 1, "period": "2026-01", "state": "submitted"},
            {"bureau_id": 1, "period": "2026-01\u0000"},
        ],
    )
    async def test_bad_input(self, statistics, tree, body):
        response = await statistics.post(BASE, json=body, headers=tree.headers(tree.city))
        assert_problem(response, 422, "/problems/validation-error")

    async def test_a_period_not_begun(self, statistics, tree):
        response = await statistics.post(
            BASE, json={"bureau_id": tree.city["id"], "period": "2099-01"}, headers=tree.headers(tree.city)
        )
        assert_problem(response, 409, "/problems/period-not-started")


class TestSubmission:
    async def test_two_submissions_at_once_submit_once(self, statistics, tree):
        import asyncio

        county = tree.counties[1]
        draft = await generate(statistics, tree, county, "2026-07")
        url = f"{BASE}/{draft.json()['id']}/submission"
        headers = {**tree.headers(county), "If-Match": draft.headers["ETag"]}
        answers = await asyncio.gather(*(statistics.post(url, headers=headers) for _ in range(3)))
        assert sorted(a.status_code for a in answers) == [200, 409, 409]
        for refused in (a for a in answers if a.status_code == 409):
            assert_problem(refused, 409, "/problems/report-submitted")
        actions = [
            e["action"] for e in await audit_entries(statistics, "statistical_report", draft.json()["id"])
        ]
        assert actions == ["generate", "submit"]

    async def test_submitted_report_never_changes(self, statistics, tree):
        county = tree.counties[0]
        await set_figures(statistics, county, "2026-03", FIGURES)
        draft = (await generate(statistics, tree, county)).json()
        submitted = await submit(statistics, tree, county, draft["id"])
        assert submitted["state"] == "submitted"
        assert submitted["submitted_at"] is not None
        assert submitted["late"] is True  # submitted after 2026-04-10
        before = await statistics.get(f"{BASE}/{draft['id']}", headers=tree.headers(county))

        await set_figures(
            statistics, county, "2026-03", {("cases_opened", "all", ""): 8, ("new_measure", "all", ""): 1}
        )
        after = await statistics.get(f"{BASE}/{draft['id']}", headers=tree.headers(county))
        assert after.json()["figures"] == as_list(FIGURES)
        assert after.content == before.content
        assert after.headers["ETag"] == before.headers["ETag"]

        again = await statistics.post(
            f"{BASE}/{draft['id']}/submission",
            headers={**tree.headers(county), "If-Match": after.headers["ETag"]},
        )
        assert_problem(again, 409, "/problems/report-submitted")
        actions = [e["action"] for e in await audit_entries(statistics, "statistical_report", draft["id"])]
        assert actions == ["generate", "submit"]

    async def test_the_database_refuses_any_write_to_a_submitted_report(self, statistics, tree):
        county = tree.counties[1]
        await set_figures(statistics, county, "2026-03", FIGURES)
        draft = (await generate(statistics, tree, county)).json()
        await submit(statistics, tree, county, draft["id"])
        writes = [
            ("UPDATE statistical_report SET correction_reason = 'x' WHERE id = :id", {}),
            ("DELETE FROM statistical_report WHERE id = :id", {}),
            ("UPDATE report_figure SET amount = amount + 1 WHERE report_id = :id", {}),
            ("DELETE FROM report_figure WHERE report_id = :id", {}),
            (
                "INSERT INTO report_figure (report_id, measure, dimension, value, amount) "
                "VALUES (:id, 'extra', 'all', '', 1)",
                {},
            ),
        ]
        for statement, params in writes:
            async with statistics.app.state.sessionmaker() as session:
                with pytest.raises(IntegrityError, match="is submitted and frozen") as refused:
                    await session.exec(text(statement), params={"id": draft["id"], **params})
                assert refused.value.orig.__cause__.constraint_name == "ck_statistical_report_frozen"
                await session.rollback()
        read = await statistics.get(f"{BASE}/{draft['id']}", headers=tree.headers(county))
        assert read.json()["figures"] == as_list(FIGURES)

    async def test_if_match_is_required_and_must_be_current(self, statistics, tree):
        county = tree.counties[0]
        await set_figures(statistics, county, "2026-01", {("cases_opened", "all", ""): 1})
        draft = await generate(statistics, tree, county, "2026-01")
        url = f"{BASE}/{draft.json()['id']}/submission"
        missing = await statistics.post(url, headers=tree.headers(county))
        assert_problem(missing, 428, "/problems/precondition-required")
        star = await statistics.post(url, headers={**tree.headers(county), "If-Match": "*"})
        assert_problem(star, 428, "/problems/precondition-required")
        stale = await statistics.post(url, headers={**tree.headers(county), "If-Match": '"0123"'})
        problem = assert_problem(stale, 412, "/problems/precondition-failed")
        assert problem["current_etag"] == draft.headers["ETag"]
        ok = await statistics.post(url, headers={**tree.headers(county), "If-Match": draft.headers["ETag"]})
        assert ok.status_code == 200, ok.text

    async def test_a_period_not_ended_cannot_be_submitted(self, statistics, tree):
        from services.common.dates import today

        now = today()
        period = f"{now.year:04d}-{now.month:02d}"
        draft = await generate(statistics, tree, tree.counties[1], period)
        response = await statistics.post(
            f"{BASE}/{draft.json()['id']}/submission",
            headers={**tree.headers(tree.counties[1]), "If-Match": draft.headers["ETag"]},
        )
        assert_problem(response, 409, "/problems/period-not-closed")

    async def test_other_bureaus(self, statistics, tree, world, token_for):
        county = tree.counties[0]
        draft = await generate(statistics, tree, county, "2026-Q1")
        url = f"{BASE}/{draft.json()['id']}/submission"
        headers = {"If-Match": draft.headers["ETag"]}
        # A sibling county's legal officer: out of scope, the same 404 as a report that does not exist.
        sibling = tree.headers(tree.counties[1])
        hidden = await statistics.post(url, headers={**sibling, **headers})
        missing = await statistics.post(f"{BASE}/999999999/submission", headers={**sibling, **headers})
        assert_problem(hidden, 404, "/problems/not-found")
        assert same_problem(hidden.json(), draft.json()["id"]) == same_problem(missing.json(), 999999999)
        read = await statistics.get(f"{BASE}/{draft.json()['id']}", headers=sibling)
        assert_problem(read, 404, "/problems/not-found")
        # The city above sees it, but does not submit the county's report.
        above = await statistics.post(url, headers={**tree.headers(tree.city), **headers})
        assert_problem(above, 403, "/problems/report-of-another-bureau")
        assert (
            await statistics.get(f"{BASE}/{draft.json()['id']}", headers=tree.headers(tree.city))
        ).status_code == 200
        # An enforcement officer of the county itself.
        enforcer = await statistics.post(url, headers={**tree.headers(county, Role.ENFORCEMENT), **headers})
        assert_problem(enforcer, 403, "/problems/role-required")
        anonymous = await statistics.post(url, headers=headers)
        assert_problem(anonymous, 401, "/problems/unauthorized")


class TestCorrections:
    async def test_a_correction_is_a_new_revision_the_old_one_kept(self, statistics, tree):
        county = tree.counties[0]
        await set_figures(statistics, county, "2026-Q1", FIGURES)
        first = (await generate(statistics, tree, county, "2026-Q1")).json()
        await submit(statistics, tree, county, first["id"])
        old = await statistics.get(f"{BASE}/{first['id']}", headers=tree.headers(county))

        await set_figures(statistics, county, "2026-Q1", {("cases_opened", "all", ""): 9})
        response = await statistics.post(
            f"{BASE}/{first['id']}/corrections", json={"reason": "两起案件漏报"}, headers=tree.headers(county)
        )
        assert response.status_code == 201, response.text
        second = response.json()
        assert response.headers["Location"] == f"{BASE}/{second['id']}"
        assert (second["revision"], second["state"], second["supersedes_id"]) == (2, "draft", first["id"])
        assert second["correction_reason"] == "两起案件漏报"
        assert {"measure": "cases_opened", "dimension": "all", "value": "", "amount": "9"} in second[
            "figures"
        ]
        await submit(statistics, tree, county, second["id"])

        kept = await statistics.get(f"{BASE}/{first['id']}", headers=tree.headers(county))
        assert kept.content == old.content
        listed = await statistics.get(
            BASE, params={"bureau_id": county["id"], "period": "2026-Q1"}, headers=tree.headers(county)
        )
        assert [(r["revision"], r["state"]) for r in listed.json()["items"]] == [
            (1, "submitted"),
            (2, "submitted"),
        ]

    async def test_what_cannot_be_corrected(self, statistics, tree):
        county = tree.counties[1]
        first = (await generate(statistics, tree, county, "2026-Q1")).json()
        url = f"{BASE}/{first['id']}/corrections"
        body = {"reason": "更正"}
        draft = await statistics.post(url, json=body, headers=tree.headers(county))
        assert_problem(draft, 409, "/problems/report-not-submitted")
        await submit(statistics, tree, county, first["id"])
        second = await statistics.post(url, json=body, headers=tree.headers(county))
        assert second.status_code == 201
        pending = await statistics.post(url, json=body, headers=tree.headers(county))
        assert_problem(pending, 409, "/problems/report-draft-exists")
        await submit(statistics, tree, county, second.json()["id"])
        superseded = await statistics.post(url, json=body, headers=tree.headers(county))
        assert_problem(superseded, 409, "/problems/report-superseded")
        for bad in (
            {},
            {"reason": ""},
            {"reason": "   "},
            {"reason": "x" * 2001},
            {"reason": "x", "figures": []},
        ):
            response = await statistics.post(
                f"{BASE}/{second.json()['id']}/corrections", json=bad, headers=tree.headers(county)
            )
            assert_problem(response, 422, "/problems/validation-error")


class TestRollup:
    async def test_a_higher_bureau_sees_its_subordinates_submissions_beside_its_own(self, statistics, tree):
        city, (a, b) = tree.city, tree.counties
        period = "2026-02"
        await set_figures(
            statistics, a, period, {("cases_opened", "all", ""): 3, ("fines_decided", "all", ""): "100.5"}
        )
        await set_figures(statistics, b, period, {("cases_opened", "all", ""): 4})
        await set_figures(
            statistics, city, period, {("cases_opened", "all", ""): 8, ("fines_decided", "all", ""): 200}
        )
        report_a = (await generate(statistics, tree, a, period)).json()
        await submit(statistics, tree, a, report_a["id"])
        draft = (await generate(statistics, tree, city, period)).json()
        rollup = draft["rollup"]
        assert [c["bureau_id"] for c in rollup["children_submitted"]] == [a["id"]]
        assert rollup["children_missing"] == [{"bureau_id": b["id"], "bureau_name": b["name"]}]
        assert rollup["as_of"] is None
        assert rollup["figures"] == [
            {"measure": "cases_opened", "dimension": "all", "value": "", "own": "8", "children": "3"},
            {"measure": "fines_decided", "dimension": "all", "value": "", "own": "200", "children": "100.5"},
        ]
        # The city submits; b submits later: the city's submitted report counts what it had.
        submitted = await submit(statistics, tree, city, draft["id"])
        report_b = (await generate(statistics, tree, b, period)).json()
        await submit(statistics, tree, b, report_b["id"])
        frozen = (await statistics.get(f"{BASE}/{draft['id']}", headers=tree.headers(city))).json()
        assert frozen == submitted
        assert [m["bureau_id"] for m in frozen["rollup"]["children_missing"]] == [b["id"]]
        # A correction of the city's report counts both.
        correction = await statistics.post(
            f"{BASE}/{draft['id']}/corrections", json={"reason": "下级补报"}, headers=tree.headers(city)
        )
        figures = correction.json()["rollup"]["figures"]
        assert figures[0] == {
            "measure": "cases_opened",
            "dimension": "all",
            "value": "",
            "own": "8",
            "children": "7",
        }
        assert correction.json()["rollup"]["children_missing"] == []


class TestList:
    async def test_scoped_and_paged(self, statistics, tree):
        a, b = tree.counties
        ids = [
            (await generate(statistics, tree, a, p)).json()["id"] for p in ("2026-05", "2026-06", "2026-07")
        ]
        other = (await generate(statistics, tree, b, "2026-05")).json()["id"]
        seen, cursor = [], None
        while True:
            params = {"limit": 2, "bureau_id": a["id"], **({"cursor": cursor} if cursor else {})}
            page = (await statistics.get(BASE, params=params, headers=tree.headers(tree.city))).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == ids
        mine = await statistics.get(BASE, params={"limit": 500}, headers=tree.headers(a))
        assert other not in [r["id"] for r in mine.json()["items"]]
        drafts = await statistics.get(
            BASE, params={"state": "draft", "period": "2026-06"}, headers=tree.headers(a)
        )
        assert [r["id"] for r in drafts.json()["items"]] == [ids[1]]
        bad = await statistics.get(BASE, params={"cursor": "bm9wZQ"}, headers=tree.headers(a))
        assert_problem(bad, 422, "/problems/validation-error")


class TestLateReports:
    async def _keys(self, statistics, bureaus) -> dict[str, tuple]:
        async with statistics.app.state.sessionmaker() as session:
            rows = await session.exec(
                text("SELECT key, severity, due, kind FROM alert WHERE bureau_id = ANY(:ids)"),
                params={"ids": [b["id"] for b in bureaus]},
            )
            return {r.key: (r.severity, r.due, r.kind) for r in rows}

    async def test_each_late_report_is_alerted_once(self, statistics, tree):
        a, b = tree.counties
        # a submits 2026-01 late (today); b's 2026-01 was submitted on its due day.
        report = (await generate(statistics, tree, a, "2026-01")).json()
        await submit(statistics, tree, a, report["id"])
        async with statistics.app.state.sessionmaker() as session:
            await session.exec(
                text(
                    "INSERT INTO statistical_report (bureau_id, bureau_path, period, period_kind, revision, "
                    "state, due_on, created_at, created_by, figures_taken_at, submitted_at, submitted_on, "
                    "submitted_by) VALUES (:b, :path, '2026-01', 'month', 1, 'submitted', '2026-02-10', "
                    "now(), "
                    "'t', now(), '2026-02-10T08:00:00Z', '2026-02-10', 't')"
                ),
                params={"b": b["id"], "path": b["path"]},
            )
            await session.commit()

        async with statistics.app.state.sessionmaker() as session:
            raised = await late_report_alerts(session, date(2026, 2, 11))
            await session.commit()
        assert raised >= 2  # the city's and a's 2026-01 (and other tests' bureaus)
        keys = await self._keys(statistics, [tree.city, a, b])
        assert keys == {
            f"report-late:{tree.city['id']}:2026-01": ("missing", date(2026, 2, 10), "late_report"),
            f"report-late:{a['id']}:2026-01": ("past", date(2026, 2, 10), "late_report"),
        }
        # Run again (another worker, the same tick): nothing new for these bureaus.
        async with statistics.app.state.sessionmaker() as session:
            await late_report_alerts(session, date(2026, 2, 11))
            await session.commit()
        assert await self._keys(statistics, [tree.city, a, b]) == keys

        # A tick missed for months is caught up: every overdue period since.
        async with statistics.app.state.sessionmaker() as session:
            await late_report_alerts(session, date(2026, 5, 1))
            await session.commit()
        later = await self._keys(statistics, [b])
        assert set(later) == {f"report-late:{b['id']}:{p}" for p in ("2026-02", "2026-03", "2026-Q1")}

    async def test_the_due_day_itself_is_on_time(self, statistics, tree):
        async with statistics.app.state.sessionmaker() as session:
            await late_report_alerts(session, date(2026, 2, 10))
            await session.commit()
        assert await self._keys(statistics, [tree.city, *tree.counties]) == {}


async def test_report_read_needs_a_token(statistics, tree):
    response = await statistics.get(f"{BASE}/1")
    assert_problem(response, 401, "/problems/unauthorized")
    bad = await statistics.get(f"{BASE}/0", headers=auth(tree.tokens(tree.city)))
    assert_problem(bad, 422, "/problems/validation-error")

"""Pilot work (试点工作) in the statistics service: submissions against the milestones, problems
and answers, the roll-out per bureau, acceptance spot checks and the progress board. The pilot
units, their grassroots designations and subtrees are the registry's, read over HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from services.common.auth import Role
from services.statistics.pilots.service import draw
from tests.conftest import assert_problem, auth
from tests.factories import create_bureau, create_provincial_unit

API = "/api/v1/statistics/pilots"
NATIONAL = {"id": 1, "path": "1."}


@dataclass
class Unit:
    unit: dict
    city: dict
    county: dict
    other_county: dict
    admin: dict  # headers of the unit's own administrator

    @property
    def id(self) -> int:
        return self.unit["id"]


async def make_unit(registry, token_for, *, designate: bool = True) -> Unit:
    national = token_for()
    unit = await create_provincial_unit(registry, national, "quality_supervision")
    city = await create_bureau(registry, national, unit, "city", "130100")
    county = await create_bureau(registry, national, city, "county", "130102")
    other_county = await create_bureau(registry, national, city, "county", "130104")
    if designate:
        response = await registry.post(
            f"/api/v1/registry/bureaus/{unit['id']}/pilot-designations",
            json={"grassroots_bureau_id": city["id"], "reported_on": "2008-08-22"},
            headers=auth(national),
        )
        assert response.status_code == 201, response.text
    return Unit(unit, city, county, other_county, auth(token_for(unit, roles=(Role.ADMIN,))))


@pytest.fixture
async def unit(registry, token_for) -> Unit:
    return await make_unit(registry, token_for)


def national_legal(token_for) -> dict:
    return auth(token_for(NATIONAL, roles=(Role.LEGAL,)))


PLAN = {
    "milestone": "implementation_plan",
    "submitted_on": "2008-09-08",
    "title": "试点实施方案",
    "plan": "一、目标",
}
SUMMARY = {
    "milestone": "summary_2008",
    "submitted_on": "2008-12-15",
    "achievements": "建立了执法责任制",
    "problems": "基层执法人员不足",
    "typical_experience": "双人执法、全过程记录",
}
SELF_CHECK = {"milestone": "self_check", "submitted_on": "2009-12-28", "conclusion": "试点任务全部完成"}


async def submit(statistics, unit: Unit, body: dict, **headers) -> dict:
    response = await statistics.post(
        f"{API}/{unit.id}/submissions", json=body, headers={**unit.admin, **headers}
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/submissions/{response.json()['id']}")
    return response.json()


def milestone(board: dict, key: str) -> dict:
    return next(m for m in board["milestones"] if m["key"] == key)


async def test_submissions_are_on_time_or_late_and_a_resubmission_keeps_the_old_revision(statistics, unit):
    plan = await submit(statistics, unit, PLAN)
    assert (plan["revision"], plan["late"], plan["due"]) == (1, False, "2008-09-10")
    assert plan["content"] == {"title": "试点实施方案", "plan": "一、目标"}
    first = await submit(statistics, unit, SUMMARY)
    assert (first["late"], first["due"]) == (True, "2008-12-10")
    assert first["content"]["typical_experience"] == "双人执法、全过程记录"

    corrected = {**SUMMARY, "submitted_on": "2008-12-20", "problems": "经费保障不足"}
    url = f"{API}/{unit.id}/submissions"
    assert_problem(
        await statistics.post(url, json=corrected, headers=unit.admin), 428, "/problems/precondition-required"
    )
    stale = await statistics.post(url, json=corrected, headers={**unit.admin, "If-Match": '"7"'})
    assert_problem(stale, 412, "/problems/precondition-failed")
    second = await submit(statistics, unit, corrected, **{"If-Match": '"1"'})
    assert (second["revision"], second["content"]["problems"]) == (2, "经费保障不足")

    listed = await statistics.get(url, params={"milestone": "summary_2008"}, headers=unit.admin)
    assert [s["revision"] for s in listed.json()["items"]] == [1, 2]
    old = await statistics.get(f"{url}/{first['id']}", headers=unit.admin)
    assert (old.json()["content"]["problems"], old.headers["ETag"]) == ("基层执法人员不足", '"1"')

    board = (await statistics.get(f"{API}/{unit.id}", headers=unit.admin)).json()
    assert board["grassroots"]["bureau_id"] == unit.city["id"]
    named = milestone(board, "grassroots_unit_named")
    assert (named["status"], named["met_on"], named["source"]) == (
        "on_time",
        "2008-08-22",
        "registry_designation",
    )
    assert milestone(board, "implementation_plan")["status"] == "on_time"
    summary = milestone(board, "summary_2008")
    # The milestone was met by the first, late submission; the correction does not change that.
    assert (summary["status"], summary["met_on"], summary["revision"]) == ("late", "2008-12-15", 2)
    assert milestone(board, "self_check")["status"] == "overdue"
    assert milestone(board, "formal_acceptance")["status"] == "pending"  # no due date
    assert board["milestones_met"] == 3


async def test_the_grassroots_completion_names_the_registry_designation(statistics, registry, token_for):
    bare = await make_unit(registry, token_for, designate=False)
    done = {"milestone": "grassroots_pilot_done", "submitted_on": "2009-06-29", "report": "基层试点完成"}
    refused = await statistics.post(f"{API}/{bare.id}/submissions", json=done, headers=bare.admin)
    assert_problem(refused, 409, "/problems/no-grassroots-unit")
    board = (await statistics.get(f"{API}/{bare.id}", headers=bare.admin)).json()
    assert board["grassroots"] is None
    assert milestone(board, "grassroots_unit_named")["status"] == "overdue"

    named = await make_unit(registry, token_for)
    submitted = await submit(statistics, named, done)
    assert submitted["content"]["grassroots_bureau_id"] == named.city["id"]
    assert submitted["late"] is False


@pytest.mark.parametrize(
    "body",
    [
        {**PLAN, "milestone": "grassroots_unit_named"},  # answered by the registry's designation
        {**PLAN, "milestone": "rollout"},
        {**PLAN, "milestone": "nonsense"},
        {k: v for k, v in SUMMARY.items() if k != "problems"},
        {**SUMMARY, "problems": " "},
        {**PLAN, "submitted_on": "2008-08-17"},  # before the notice
        {**PLAN, "submitted_on": "2999-01-01"},
        {**PLAN, "submitted_on": "2008-02-30"},
        {**PLAN, "extra": 1},
        {**PLAN, "title": "x" * 201},
        {"submitted_on": "2008-09-08"},
    ],
)
async def test_malformed_submissions_are_refused(statistics, unit, body):
    response = await statistics.post(f"{API}/{unit.id}/submissions", json=body, headers=unit.admin)
    assert_problem(response, 422, "/problems/validation-error")


async def test_only_the_unit_itself_writes_and_other_provinces_see_nothing(
    statistics, registry, token_for, unit
):
    other = await make_unit(registry, token_for)
    url = f"{API}/{unit.id}/submissions"
    for headers in (other.admin, auth(token_for(unit.city, roles=(Role.ADMIN,)))):
        assert_problem(await statistics.post(url, json=PLAN, headers=headers), 404, "/problems/not-found")
        assert_problem(await statistics.get(f"{API}/{unit.id}", headers=headers), 404, "/problems/not-found")
    for headers in (
        auth(token_for()),
        national_legal(token_for),
        auth(token_for(unit.unit, roles=(Role.ENFORCEMENT,))),
    ):
        assert_problem(
            await statistics.post(url, json=PLAN, headers=headers),
            403,
            "/problems/pilot-unit-writer-required",
        )
    assert (await statistics.post(url, json=PLAN)).status_code == 401
    # A bureau that is no pilot unit, and one that does not exist, answer alike.
    for missing in (unit.city["id"], 10**12):
        assert_problem(
            await statistics.get(f"{API}/{missing}", headers=auth(token_for())), 404, "/problems/not-found"
        )
    submission = await submit(statistics, unit, PLAN)
    foreign = await statistics.get(f"{API}/{other.id}/submissions/{submission['id']}", headers=other.admin)
    assert_problem(foreign, 404, "/problems/not-found")

    mine = (await statistics.get(API, headers=unit.admin)).json()
    assert [b["unit_id"] for b in mine["items"]] == [unit.id]
    everyone: list[int] = []
    cursor = None
    while True:
        page = (
            await statistics.get(
                API, params={"limit": 50, **({"cursor": cursor} if cursor else {})}, headers=auth(token_for())
            )
        ).json()
        everyone += [b["unit_id"] for b in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert {unit.id, other.id} <= set(everyone)
    assert everyone == sorted(everyone)
    assert_problem(
        await statistics.get(API, params={"limit": 51}, headers=unit.admin), 422, "/problems/validation-error"
    )


async def test_problems_are_answered_by_the_national_policy_and_legal_department(
    statistics, registry, token_for, unit
):
    body = {
        "subject": "执法文书格式",
        "description": "各分支局执法文书格式不统一",
        "reported_on": "2008-10-06",
    }
    created = await statistics.post(f"{API}/{unit.id}/problems", json=body, headers=unit.admin)
    assert created.status_code == 201, created.text
    problem = created.json()
    assert problem["state"] == "open"
    url = f"{API}/problems/{problem['id']}"
    assert created.headers["Location"].endswith(url)

    other = await make_unit(registry, token_for)
    assert_problem(await statistics.get(url, headers=other.admin), 404, "/problems/not-found")
    theirs = await statistics.get(f"{API}/problems", params={"unit_id": unit.id}, headers=other.admin)
    assert theirs.json()["items"] == []
    ours = await statistics.get(
        f"{API}/problems", params={"unit_id": unit.id, "state": "open"}, headers=unit.admin
    )
    assert [p["id"] for p in ours.json()["items"]] == [problem["id"]]
    board = (await statistics.get(f"{API}/{unit.id}", headers=unit.admin)).json()
    assert (board["open_problems"], board["answered_problems"]) == (1, 0)

    answer = {"answer": "按总局统一格式执行", "answered_on": "2008-10-20"}
    legal = national_legal(token_for)
    for headers in (
        unit.admin,
        auth(token_for(unit.unit, roles=(Role.LEGAL,))),
        auth(token_for(roles=(Role.HEAD,))),
    ):
        refused = await statistics.post(f"{url}/answer", json=answer, headers={**headers, "If-Match": '"1"'})
        assert_problem(refused, 403, "/problems/role-required")
    assert_problem(
        await statistics.post(f"{url}/answer", json=answer, headers=legal),
        428,
        "/problems/precondition-required",
    )
    early = await statistics.post(
        f"{url}/answer", json={**answer, "answered_on": "2008-10-01"}, headers={**legal, "If-Match": '"1"'}
    )
    assert_problem(early, 409, "/problems/answer-before-report")
    answered = await statistics.post(f"{url}/answer", json=answer, headers={**legal, "If-Match": '"1"'})
    assert answered.status_code == 200, answered.text
    assert (answered.json()["state"], answered.headers["ETag"]) == ("answered", '"2"')
    stale = await statistics.post(f"{url}/answer", json=answer, headers={**legal, "If-Match": '"1"'})
    assert_problem(stale, 412, "/problems/precondition-failed")
    again = await statistics.post(f"{url}/answer", json=answer, headers={**legal, "If-Match": '"2"'})
    assert_problem(again, 409, "/problems/problem-already-answered")
    missing = await statistics.post(
        f"{API}/problems/999999999/answer", json=answer, headers={**legal, "If-Match": '"1"'}
    )
    assert_problem(missing, 404, "/problems/not-found")
    board = (await statistics.get(f"{API}/{unit.id}", headers=unit.admin)).json()
    assert (board["open_problems"], board["answered_problems"]) == (0, 1)


async def test_the_roll_out_is_tracked_per_bureau_of_the_subtree(statistics, registry, token_for, unit):
    url = f"{API}/{unit.id}/rollout"
    progress = (await statistics.get(url, headers=unit.admin)).json()
    assert {b["bureau_id"] for b in progress["bureaus"]} == {
        unit.city["id"],
        unit.county["id"],
        unit.other_county["id"],
    }
    assert progress["counts"] == {"total": 3, "not_started": 3, "in_progress": 0, "done": 0, "done_late": 0}

    started = {"state": "in_progress", "started_on": "2009-07-15"}
    county = f"{url}/{unit.county['id']}"
    created = await statistics.put(county, json=started, headers=unit.admin)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "in_progress"
    done = {"state": "done", "started_on": "2009-07-15", "done_on": "2009-11-30"}
    assert_problem(
        await statistics.put(county, json=done, headers=unit.admin), 428, "/problems/precondition-required"
    )
    updated = await statistics.put(
        county, json=done, headers={**unit.admin, "If-Match": created.headers["ETag"]}
    )
    assert (updated.status_code, updated.json()["done_on"], updated.headers["ETag"]) == (
        200,
        "2009-11-30",
        '"2"',
    )
    stale = await statistics.put(
        county, json=done, headers={**unit.admin, "If-Match": created.headers["ETag"]}
    )
    assert_problem(stale, 412, "/problems/precondition-failed")
    late = {"state": "done", "started_on": "2009-08-01", "done_on": "2010-01-20"}
    assert (
        await statistics.put(f"{url}/{unit.city['id']}", json=late, headers=unit.admin)
    ).status_code == 201
    progress = (await statistics.get(url, headers=unit.admin)).json()
    assert progress["counts"] == {"total": 3, "not_started": 1, "in_progress": 0, "done": 2, "done_late": 1}
    assert (
        milestone((await statistics.get(f"{API}/{unit.id}", headers=unit.admin)).json(), "rollout")["status"]
        == "overdue"
    )

    assert (
        await statistics.put(f"{url}/{unit.other_county['id']}", json=done, headers=unit.admin)
    ).status_code == 201
    board = (await statistics.get(f"{API}/{unit.id}", headers=unit.admin)).json()
    assert board["rollout"] == {"total": 3, "not_started": 0, "in_progress": 0, "done": 3, "done_late": 1}
    assert milestone(board, "rollout")["status"] == "late"  # its last bureau was done in 2010
    assert milestone(board, "rollout")["met_on"] == "2010-01-20"

    # Bureaus outside the subtree (another unit's, the unit itself, none at all) are as missing.
    other = await make_unit(registry, token_for)
    for bureau_id in (other.county["id"], unit.id, 10**12):
        assert_problem(
            await statistics.put(f"{url}/{bureau_id}", json=started, headers=unit.admin),
            404,
            "/problems/not-found",
        )
    assert_problem(await statistics.put(county, json=done, headers=other.admin), 404, "/problems/not-found")
    national = auth(token_for())
    assert_problem(
        await statistics.put(county, json=done, headers=national), 403, "/problems/pilot-unit-writer-required"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"state": "in_progress", "started_on": "2009-06-30"},
        {"state": "done", "started_on": "2009-07-15"},
        {"state": "in_progress", "started_on": "2009-07-15", "done_on": "2009-08-01"},
        {"state": "done", "started_on": "2009-08-15", "done_on": "2009-08-01"},
        {"state": "not_started", "started_on": "2009-07-15"},
        {"state": "done", "started_on": "2009-07-15", "done_on": "2999-01-01"},
    ],
)
async def test_malformed_roll_outs_are_refused(statistics, unit, body):
    response = await statistics.put(
        f"{API}/{unit.id}/rollout/{unit.county['id']}", json=body, headers=unit.admin
    )
    assert_problem(response, 422, "/problems/validation-error")


def test_a_draw_depends_only_on_its_seed_and_population():
    population = [5, 17, 3, 42, 8, 11]
    assert draw(20091231, population, 3) == draw(20091231, sorted(population, reverse=True), 3)
    assert len(draw(1, population, 3)) == 3
    assert draw(1, population, 10) == sorted(population)
    assert {tuple(draw(seed, population, 3)) for seed in range(20)} != {tuple(draw(0, population, 3))}


async def test_acceptance_spot_checks_draw_reproducibly_among_the_self_checked_units(
    statistics, registry, token_for
):
    checked = [await make_unit(registry, token_for) for _ in range(2)]
    for u in checked:
        await submit(statistics, u, SELF_CHECK)
    unchecked = await make_unit(registry, token_for)
    legal = national_legal(token_for)
    url = f"{API}/acceptance-samples"

    created = await statistics.post(
        url, json={"size": 3, "seed": 20100115, "drawn_on": "2010-01-15"}, headers=legal
    )
    assert created.status_code == 201, created.text
    first = created.json()
    assert {u.id for u in checked} <= set(first["population"])
    assert unchecked.id not in first["population"]
    assert first["sampled"] == draw(20100115, first["population"], 3)
    again = (
        await statistics.post(
            url, json={"size": 3, "seed": 20100115, "drawn_on": "2010-01-15"}, headers=legal
        )
    ).json()
    assert (again["population"], again["sampled"]) == (first["population"], first["sampled"])
    seeded = (await statistics.post(url, json={"size": 2, "drawn_on": "2010-01-15"}, headers=legal)).json()
    assert seeded["sampled"] == draw(seeded["seed"], seeded["population"], 2)  # the drawn seed is recorded

    everyone = (
        await statistics.post(url, json={"size": 100, "seed": 7, "drawn_on": "2010-01-15"}, headers=legal)
    ).json()
    assert everyone["sampled"] == everyone["population"]
    results = f"{url}/{everyone['id']}/results"
    passed = {"unit_id": checked[0].id, "outcome": "passed", "checked_on": "2010-02-03"}
    for headers in (checked[0].admin, auth(token_for(roles=(Role.ENFORCEMENT,)))):
        assert_problem(
            await statistics.post(results, json=passed, headers=headers), 403, "/problems/role-required"
        )
    recorded = await statistics.post(results, json=passed, headers=legal)
    assert recorded.status_code == 201, recorded.text
    assert_problem(
        await statistics.post(results, json=passed, headers=legal),
        409,
        "/problems/acceptance-result-recorded",
    )
    not_sampled = {**passed, "unit_id": unchecked.id}
    assert_problem(
        await statistics.post(results, json=not_sampled, headers=legal), 409, "/problems/unit-not-sampled"
    )
    early = {**passed, "unit_id": checked[1].id, "checked_on": "2010-01-10"}
    assert_problem(
        await statistics.post(results, json=early, headers=legal), 409, "/problems/check-before-draw"
    )
    no_findings = {"unit_id": checked[1].id, "outcome": "failed", "checked_on": "2010-02-04"}
    assert_problem(
        await statistics.post(results, json=no_findings, headers=legal), 422, "/problems/validation-error"
    )
    failed = await statistics.post(
        results, json={**no_findings, "findings": "推广未覆盖全部县局"}, headers=legal
    )
    assert failed.status_code == 201, failed.text

    sample = (await statistics.get(f"{url}/{everyone['id']}", headers=legal)).json()
    assert {(r["unit_id"], r["outcome"]) for r in sample["results"]} == {
        (checked[0].id, "passed"),
        (checked[1].id, "failed"),
    }
    board = (await statistics.get(f"{API}/{checked[1].id}", headers=checked[1].admin)).json()
    assert board["acceptance"]["outcome"] == "failed"
    assert milestone(board, "formal_acceptance")["status"] == "on_time"
    assert milestone(board, "self_check")["status"] == "on_time"

    # Samples are the national regulator's: below it they are as missing.
    assert_problem(
        await statistics.get(f"{url}/{everyone['id']}", headers=checked[0].admin), 404, "/problems/not-found"
    )
    assert (await statistics.get(url, headers=checked[0].admin)).json()["items"] == []
    assert_problem(
        await statistics.post(results, json=passed, headers=checked[0].admin), 403, "/problems/role-required"
    )
    assert_problem(await statistics.get(f"{url}/999999999", headers=legal), 404, "/problems/not-found")
    draw_by_unit = await statistics.post(
        url, json={"size": 1, "drawn_on": "2010-01-15"}, headers=checked[0].admin
    )
    assert_problem(draw_by_unit, 403, "/problems/role-required")
    for bad in (
        {"size": 0, "drawn_on": "2010-01-15"},
        {"size": 1, "seed": -1, "drawn_on": "2010-01-15"},
        {"size": 1},
    ):
        assert_problem(await statistics.post(url, json=bad, headers=legal), 422, "/problems/validation-error")


async def test_the_demo_seed_fills_two_boards_once(statistics, registry, token_for):
    from services.statistics.seed import DEMO_UNITS, seed_pilot_work
    from tests.factories import pilot_unit

    units = {
        "admin-330000-qs": await pilot_unit(registry, token_for(), "quality_supervision", "330000"),
        "admin-320000-ee": await pilot_unit(registry, token_for(), "entry_exit", "320000"),
    }
    assert {login for login, _, _ in DEMO_UNITS} == set(units)
    headers_of = {login: auth(token_for(unit, roles=(Role.ADMIN,))) for login, unit in units.items()}
    assert await seed_pilot_work(statistics, headers_of) == list(units)
    assert await seed_pilot_work(statistics, headers_of) == []  # idempotent
    board = (
        await statistics.get(f"{API}/{units['admin-330000-qs']['id']}", headers=headers_of["admin-330000-qs"])
    ).json()
    assert milestone(board, "implementation_plan")["status"] == "on_time"
    assert milestone(board, "summary_2008")["status"] == "on_time"
    assert board["open_problems"] == 1


async def test_concurrent_first_writes_keep_one_and_a_replay_changes_nothing(statistics, unit):
    import asyncio
    import uuid

    url = f"{API}/{unit.id}/submissions"
    answers = await asyncio.gather(
        *(statistics.post(url, json=SELF_CHECK, headers=unit.admin) for _ in range(4))
    )
    # One is kept; the others met it either inserting at the same time (409) or after it was
    # committed (428: a resubmission names the revision it corrects).
    assert sorted(a.status_code for a in answers)[0] == 201, [a.text for a in answers]
    losers = [a for a in answers if a.status_code != 201]
    assert len(losers) == 3, [a.text for a in answers]
    assert {a.json()["type"] for a in losers} <= {
        "/problems/submission-conflict",
        "/problems/precondition-required",
    }
    listed = (await statistics.get(url, params={"milestone": "self_check"}, headers=unit.admin)).json()
    assert [s["revision"] for s in listed["items"]] == [1]
    # Resubmissions naming the same revision: one becomes revision 2, the others are refused.
    answers = await asyncio.gather(
        *(statistics.post(url, json=SELF_CHECK, headers={**unit.admin, "If-Match": '"1"'}) for _ in range(3))
    )
    assert sorted(a.status_code for a in answers)[0] == 201, [a.text for a in answers]
    losers = [a for a in answers if a.status_code != 201]
    assert len(losers) == 2, [a.text for a in answers]
    assert {a.json()["type"] for a in losers} <= {
        "/problems/submission-conflict",
        "/problems/precondition-failed",
    }
    listed = (await statistics.get(url, params={"milestone": "self_check"}, headers=unit.admin)).json()
    assert [s["revision"] for s in listed["items"]] == [1, 2]

    rollout = f"{API}/{unit.id}/rollout/{unit.county['id']}"
    body = {"state": "in_progress", "started_on": "2009-07-15"}
    answers = await asyncio.gather(
        *(statistics.put(rollout, json=body, headers=unit.admin) for _ in range(3))
    )
    losers = [a for a in answers if a.status_code != 201]
    assert len(losers) == 2, [a.text for a in answers]
    assert {a.json()["type"] for a in losers} <= {
        "/problems/rollout-conflict",
        "/problems/precondition-required",
    }
    progress = (await statistics.get(f"{API}/{unit.id}/rollout", headers=unit.admin)).json()
    assert progress["counts"]["in_progress"] == 1

    key = {"Idempotency-Key": str(uuid.uuid4())}
    problem = {"subject": "重复报送", "description": "同一请求重复发送", "reported_on": "2008-11-01"}
    first = await statistics.post(f"{API}/{unit.id}/problems", json=problem, headers={**unit.admin, **key})
    again = await statistics.post(f"{API}/{unit.id}/problems", json=problem, headers={**unit.admin, **key})
    assert (first.status_code, again.status_code, again.json()["id"]) == (201, 201, first.json()["id"])
    listed = (await statistics.get(f"{API}/problems", params={"unit_id": unit.id}, headers=unit.admin)).json()
    assert [p["id"] for p in listed["items"]] == [first.json()["id"]]


async def test_another_province_and_a_missing_id_answer_the_same_problem(
    statistics, registry, token_for, unit
):
    other = await make_unit(registry, token_for)
    reported = await statistics.post(
        f"{API}/{unit.id}/problems",
        json={"subject": "范围", "description": "范围测试", "reported_on": "2008-10-06"},
        headers=unit.admin,
    )
    plan = await submit(statistics, unit, PLAN)
    missing = 987_654_321
    rollout = {"state": "in_progress", "started_on": "2009-07-15"}

    def masked(response, asked) -> dict:
        problem = {k: v for k, v in response.json().items() if k != "request_id"}
        # Only the id itself: another number of the detail may hold its digits (unit 13, id 3).
        problem["detail"] = re.sub(rf"(?<!\d){asked}(?!\d)", "<asked>", problem["detail"])
        return problem

    cases = [
        ("GET", f"{API}/{{id}}", None, unit.id),
        ("GET", f"{API}/{{id}}/rollout", None, unit.id),
        ("GET", f"{API}/{{id}}/submissions", None, unit.id),
        (
            "POST",
            f"{API}/{{id}}/problems",
            {"subject": "x" * 3, "description": "yy", "reported_on": "2008-10-06"},
            unit.id,
        ),
        ("GET", f"{API}/problems/{{id}}", None, reported.json()["id"]),
        ("GET", f"{API}/{other.id}/submissions/{{id}}", None, plan["id"]),
        ("PUT", f"{API}/{other.id}/rollout/{{id}}", rollout, unit.county["id"]),
    ]
    for method, template, body, asked in cases:
        seen = await statistics.request(method, template.format(id=asked), json=body, headers=other.admin)
        absent = await statistics.request(method, template.format(id=missing), json=body, headers=other.admin)
        assert seen.status_code == absent.status_code == 404, (template, seen.text, absent.text)
        assert masked(seen, asked) == masked(absent, missing), template

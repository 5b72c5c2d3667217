"""The hearing's timetable (听证): its record, the deadlines of the hearing rules, the notice
served in time, and the hearing held and reported before it is concluded."""

from __future__ import annotations

from tests.conftest import assert_problem, auth
from tests.enforcement.flow import API, HEARING, fine, ok, put_hearing, read_case, review_answer, step
from tests.enforcement.test_procedure import investigated

# A fine of 150,000 yuan to an organisation reaches the hearing threshold.
PENALTIES = [fine("150000.00")]


async def notified(enforcement, registry, world) -> dict:
    case, _, _ = await investigated(enforcement, registry, world, penalties=PENALTIES)
    case = await ok(enforcement, world.officers[0], case, "request_review", occurred_on="2026-06-21")
    case = await review_answer(
        enforcement, world.head, case, "agree", answered_on="2026-06-24", reason="同意"
    )
    return await ok(enforcement, world.officers[0], case, "serve_prior_notice", occurred_on="2026-06-26")


async def in_hearing(enforcement, registry, world) -> dict:
    """A case whose party asked for a hearing on Monday 29 June 2026."""
    case = await notified(enforcement, registry, world)
    return await ok(enforcement, world.officers[0], case, "request_hearing", occurred_on="2026-06-29")


async def hearing_of(enforcement, person, case) -> dict:
    response = await enforcement.get(f"{API}/cases/{case['id']}/hearing", headers=auth(person.token))
    assert response.status_code == 200, response.text
    return response.json()


async def case_deadlines(enforcement, person, case) -> dict[str, dict]:
    response = await enforcement.get(f"{API}/cases/{case['id']}/deadlines", headers=auth(person.token))
    assert response.status_code == 200, response.text
    return {d["rule"]: d for d in response.json()}


def by_rule(hearing: dict) -> dict[str, dict]:
    return {d["rule"]: d for d in hearing["deadlines"]}


class TestTimetable:
    async def test_each_stage_recorded_with_its_deadline(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await in_hearing(enforcement, registry, world)
        hearing = await hearing_of(enforcement, o1, case)
        assert hearing["requested_on"] == "2026-06-29" and hearing["host"] is None
        host = by_rule(hearing)
        assert list(host) == ["hearing_host_named"]
        assert (host["hearing_host_named"]["due"], host["hearing_host_named"]["met"]) == ("2026-07-02", False)
        assert host["hearing_host_named"]["explanation"]["start"] == "2026-06-29"
        running = await case_deadlines(enforcement, o1, case)
        assert running["hearing_host_named"]["due"] == "2026-07-02"
        assert running["decision"]["paused"] is True  # the hearing is excluded from the decision's days

        named = await put_hearing(enforcement, o1, case, host="王听证", host_named_on="2026-06-30")
        assert named.status_code == 200, named.text
        assert named.headers["ETag"] == f'"{case["version"] + 1}"'
        deadlines = by_rule(named.json())
        assert deadlines["hearing_host_named"]["met_on"] == "2026-06-30"
        assert deadlines["hearing_host_named"]["late"] is False
        assert deadlines["hearing_files_handed"]["due"] == "2026-07-03"  # 3 working days from the host
        running = await case_deadlines(enforcement, o1, case)
        assert "hearing_host_named" not in running
        assert running["hearing_files_handed"]["due"] == "2026-07-03"
        assert (await read_case(enforcement, o1, case))["next_due_rule"] == "hearing_files_handed"

        case = await read_case(enforcement, o1, case)
        whole = await put_hearing(enforcement, o1, case, **HEARING)
        assert whole.status_code == 200, whole.text
        record = whole.json()
        assert (record["hearing_date"], record["held_on"], record["report_on"]) == (
            "2026-07-14",
            "2026-07-14",
            "2026-07-15",
        )
        deadlines = by_rule(record)
        assert list(deadlines) == [
            "hearing_host_named",
            "hearing_files_handed",
            "hearing_date_fixed",
            "hearing_notice_to_party",
            "hearing_report",
        ]
        assert deadlines["hearing_date_fixed"]["due"] == "2026-07-08"  # 5 working days from the files
        notice = deadlines["hearing_notice_to_party"]
        assert (notice["due"], notice["met_on"], notice["late"]) == ("2026-07-03", "2026-07-02", False)
        assert notice["explanation"]["day_kind"] == "working_before"
        assert deadlines["hearing_report"]["due"] == "2026-07-21"  # 5 working days after the hearing
        assert all(d["met"] for d in deadlines.values())
        running = await case_deadlines(enforcement, o1, case)
        assert not [rule for rule in running if rule.startswith("hearing_")]

        timeline = (
            await enforcement.get(f"{API}/cases/{case['id']}/timeline", headers=auth(o1.token))
        ).json()
        recorded = [e for e in timeline if e["step"] == "record_hearing"]
        assert [e["occurred_on"] for e in recorded] == ["2026-06-30", "2026-07-15"]
        assert recorded[0]["details"]["changes"]["host"] == [None, "王听证"]
        assert recorded[1]["details"]["changes"]["hearing_date"] == [None, "2026-07-14"]
        assert recorded[1]["officer_id"] == o1.id

        case = await read_case(enforcement, o1, case)
        same = await put_hearing(enforcement, o1, case, **HEARING)  # nothing changes: nothing noted
        assert same.status_code == 200 and same.headers["ETag"] == f'"{case["version"]}"'
        case = await ok(
            enforcement, o1, case, "conclude_hearing", occurred_on="2026-07-15", reason="听证报告"
        )
        assert case["state"] == "heard"
        after = await put_hearing(enforcement, o1, case, **HEARING)
        assert_problem(after, 409, "/problems/case-not-in-hearing")
        assert (await hearing_of(enforcement, o1, case))["report_on"] == "2026-07-15"

    async def test_the_next_deadline_of_a_public_hearing(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await in_hearing(enforcement, registry, world)
        fields = {k: HEARING[k] for k in ("host", "host_named_on", "files_handed_on", "hearing_date")}
        fields |= {"public": True, "notice_served_on": "2026-07-02"}
        response = await put_hearing(enforcement, o1, case, **fields)
        assert response.status_code == 200, response.text
        public = by_rule(response.json())["hearing_public_notice"]
        assert (public["due"], public["met"]) == ("2026-07-09", False)  # 3 working days before the 14th
        assert (await case_deadlines(enforcement, o1, case))["hearing_public_notice"]["due"] == "2026-07-09"


class TestRefusals:
    async def test_notice_served_too_late(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await in_hearing(enforcement, registry, world)
        response = await put_hearing(enforcement, o1, case, **{**HEARING, "notice_served_on": "2026-07-06"})
        problem = assert_problem(response, 409, "/problems/hearing-notice-late")
        assert (problem["latest_on"], problem["hearing_date"]) == ("2026-07-03", "2026-07-14")
        assert "2026-07-03" in problem["detail"]
        after = await hearing_of(enforcement, o1, case)
        assert after["hearing_date"] is None  # nothing recorded
        assert (await read_case(enforcement, o1, case))["version"] == case["version"]

    async def test_public_notice_too_late_and_required_before_holding(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await in_hearing(enforcement, registry, world)
        public = {**HEARING, "public": True}
        late = await put_hearing(enforcement, o1, case, **public, public_notice_on="2026-07-10")
        problem = assert_problem(late, 409, "/problems/hearing-public-notice-late")
        assert problem["latest_on"] == "2026-07-09"
        unannounced = await put_hearing(enforcement, o1, case, **public)
        problem = assert_problem(unannounced, 422, "/problems/validation-error")
        assert {"loc": "body.held_on", "type": "missing_earlier_date"}.items() <= problem["errors"][0].items()
        private = await put_hearing(enforcement, o1, case, **HEARING, public_notice_on="2026-07-08")
        problem = assert_problem(private, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.public_notice_on"
        announced = await put_hearing(enforcement, o1, case, **public, public_notice_on="2026-07-08")
        assert announced.status_code == 200, announced.text

    async def test_dates_in_order(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await in_hearing(enforcement, registry, world)
        cases = [
            ({"host": "王听证", "host_named_on": "2026-06-26"}, "body.host_named_on", "date_order"),
            ({"files_handed_on": "2026-07-01"}, "body.files_handed_on", "missing_earlier_date"),
            (
                {"host": "王听证", "host_named_on": "2026-07-01", "files_handed_on": "2026-06-30"},
                "body.files_handed_on",
                "date_order",
            ),
            ({"host_named_on": "2026-06-30"}, "body.host", "missing"),
            ({**HEARING, "report_on": "2026-07-13"}, "body.report_on", "date_order"),
            ({**HEARING, "held_on": "2026-07-13", "report_on": "2026-07-13"}, "body.held_on", "date_order"),
            ({**HEARING, "date_fixed_on": "2026-06-30"}, "body.date_fixed_on", "date_order"),
        ]
        for body, loc, kind in cases:
            response = await put_hearing(enforcement, o1, case, **body)
            problem = assert_problem(response, 422, "/problems/validation-error")
            assert (problem["errors"][0]["loc"], problem["errors"][0]["type"]) == (loc, kind), body
        future = await put_hearing(enforcement, o1, case, **{**HEARING, "held_on": "2099-01-01"})
        assert_problem(future, 422, "/problems/validation-error")

    async def test_the_host_is_not_an_investigator(self, enforcement, registry, world):
        case = await in_hearing(enforcement, registry, world)
        response = await put_hearing(
            enforcement,
            world.officers[0],
            case,
            host=world.officers[1].officer["name"],
            host_named_on="2026-06-30",
        )
        assert_problem(response, 409, "/problems/host-is-case-officer")

    async def test_concluded_only_once_held_and_reported(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await in_hearing(enforcement, registry, world)
        bare = await step(enforcement, o1, case, "conclude_hearing", occurred_on="2026-07-15", reason="r")
        problem = assert_problem(bare, 409, "/problems/hearing-not-held")
        assert problem["missing"] == ["held_on", "report_on"]
        unreported = {k: v for k, v in HEARING.items() if k != "report_on"}
        assert (await put_hearing(enforcement, o1, case, **unreported)).status_code == 200
        case = await read_case(enforcement, o1, case)
        response = await step(enforcement, o1, case, "conclude_hearing", occurred_on="2026-07-15", reason="r")
        assert assert_problem(response, 409, "/problems/hearing-not-held")["missing"] == ["report_on"]
        assert (await read_case(enforcement, o1, case))["state"] == "hearing"
        running = await case_deadlines(enforcement, o1, case)
        assert running["hearing_report"]["due"] == "2026-07-21"

    async def test_only_while_in_hearing(self, enforcement, registry, world):
        o1 = world.officers[0]
        case = await notified(enforcement, registry, world)
        response = await put_hearing(enforcement, o1, case, host="王听证", host_named_on="2026-06-30")
        problem = assert_problem(response, 409, "/problems/case-not-in-hearing")
        assert problem["state"] == "notified"
        missing = await enforcement.get(f"{API}/cases/{case['id']}/hearing", headers=auth(o1.token))
        assert_problem(missing, 404, "/problems/not-found")

    async def test_who_records_it(self, enforcement, registry, world):
        case = await in_hearing(enforcement, registry, world)
        named = {"host": "王听证", "host_named_on": "2026-06-30"}
        head = await put_hearing(enforcement, world.head, case, **named)
        assert_problem(head, 403, "/problems/role-required")
        other = await put_hearing(enforcement, world.officers[2], case, **named)
        assert_problem(other, 403, "/problems/not-case-officer")
        no_post = await put_hearing(enforcement, world.no_post, case, **named)
        assert assert_problem(no_post, 403, "/problems/post-not-authorized")["step"] == "record_hearing"
        stranger = await put_hearing(enforcement, world.stranger, case, **named)
        assert_problem(stranger, 404, "/problems/not-found")
        read = await enforcement.get(f"{API}/cases/{case['id']}/hearing", headers=auth(world.stranger.token))
        assert_problem(read, 404, "/problems/not-found")
        stale = await put_hearing(
            enforcement, world.officers[0], {**case, "version": case["version"] - 1}, **named
        )
        assert_problem(stale, 412, "/problems/precondition-failed")
        bare = await enforcement.put(
            f"{API}/cases/{case['id']}/hearing", json=named, headers=auth(world.officers[0].token)
        )
        assert_problem(bare, 428, "/problems/precondition-required")
        assert (await hearing_of(enforcement, world.head, case))["host"] is None

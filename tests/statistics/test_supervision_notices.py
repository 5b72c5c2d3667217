"""Supervision notices (执法监督通知书): a higher bureau's legal-affairs body sends one to a bureau
below it; the receiving bureau answers within 10 working days and may object within 5; the sender
replies to an objection; an answer not given in time raises an alert."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.common.auth import Role
from services.common.dates import add_working_days, today
from services.statistics import deadlines
from services.statistics.oversight.detectors import objections_unreplied, supervision_notices_unanswered
from tests.conftest import assert_problem, auth
from tests.enforcement.flow import new_lead, open_case, subjects
from tests.statistics.oversight_helpers import alerts_of

API = "/api/v1/statistics/supervision-notices"


@pytest.fixture
def people(world, token_for):
    return {
        "city_legal": world.headers(world.legal),
        "city_head": auth(token_for(world.city, roles=(Role.HEAD,))),
        "county_legal": auth(token_for(world.county, roles=(Role.LEGAL,))),
        "county_head": world.headers(world.head),
        "county_enforcement": world.headers(world.officers[0]),
        "other_legal": auth(token_for(world.other_county, roles=(Role.LEGAL,))),
        "province_legal": auth(token_for(world.province, roles=(Role.LEGAL,))),
    }


def notice_body(world, **overrides) -> dict:
    return {
        "to_bureau_id": world.county["id"],
        "subject_type": "matter",
        "matter": "行政处罚案卷评查发现的问题",
        "requirements": "请于收到通知后十个工作日内书面报告整改情况。",
        **overrides,
    }


async def send(statistics, people, world, sender: str = "city_legal", **overrides) -> dict:
    response = await statistics.post(API, json=notice_body(world, **overrides), headers=people[sender])
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"{API}/{response.json()['id']}"
    assert response.headers["ETag"] == '"1"'
    return response.json()


def if_match(headers: dict, notice: dict) -> dict:
    return {**headers, "If-Match": f'"{notice["version"]}"'}


# --- sending ---------------------------------------------------------------------


async def test_a_city_sends_a_notice_to_a_county_with_its_windows(statistics, world, people):
    notice = await send(statistics, people, world, number="市监法督〔2026〕1号")
    received = today()
    assert notice["state"] == "sent"
    assert (notice["from_bureau_id"], notice["bureau_id"]) == (world.city["id"], world.county["id"])
    assert notice["received_on"] == notice["sent_on"] == received.isoformat()
    assert notice["answer_due"] == deadlines.due("supervision_notice_answer", received).isoformat()
    assert notice["objection_due"] == deadlines.due("supervision_notice_objection", received).isoformat()

    # The province above, the sender, and the receiver read it; a sibling county does not.
    for who in ("province_legal", "city_legal", "city_head", "county_legal", "county_head"):
        got = await statistics.get(f"{API}/{notice['id']}", headers=people[who])
        assert got.status_code == 200, (who, got.text)
        assert got.headers["ETag"] == '"1"'
    assert_problem(
        await statistics.get(f"{API}/{notice['id']}", headers=people["other_legal"]),
        404,
        "/problems/not-found",
    )
    listed = await statistics.get(
        API, params={"from_bureau_id": world.city["id"], "limit": 500}, headers=people["county_legal"]
    )
    assert notice["id"] in [n["id"] for n in listed.json()["items"]]
    others = await statistics.get(API, params={"limit": 500}, headers=people["other_legal"])
    assert notice["id"] not in [n["id"] for n in others.json()["items"]]


async def test_dates_received_later_move_the_windows_with_working_days(statistics, world, people):
    # Received the day before the National Day holiday: the windows skip the week off.
    notice = await send(statistics, people, world, sent_on="2026-09-29", received_on="2026-09-30")
    assert notice["answer_due"] == deadlines.due("supervision_notice_answer", date(2026, 9, 30)).isoformat()
    assert notice["answer_due"] > "2026-10-14"  # more than 10 calendar days: the holiday is not counted


async def test_a_notice_received_in_a_year_the_holiday_calendar_does_not_cover_is_refused(
    statistics, world, people
):
    response = await statistics.post(
        API,
        json=notice_body(world, sent_on="2003-06-02", received_on="2003-06-03"),
        headers=people["city_legal"],
    )
    assert assert_problem(response, 409, "/problems/calendar-not-covered")["year"] == 2003


async def test_a_notice_goes_only_below_the_sender_within_its_subtree(statistics, world, people):
    assert_problem(
        await statistics.post(
            API, json=notice_body(world, to_bureau_id=world.city["id"]), headers=people["city_legal"]
        ),
        409,
        "/problems/notice-to-own-bureau",
    )
    # A county to its sibling, a county to the city above it, to a bureau that does not exist: 404 alike.
    for sender, target in (
        ("county_legal", world.other_county["id"]),
        ("county_legal", world.city["id"]),
        ("city_legal", 999999999),
    ):
        response = await statistics.post(
            API, json=notice_body(world, to_bureau_id=target), headers=people[sender]
        )
        assert_problem(response, 404, "/problems/not-found")


async def test_only_the_legal_affairs_body_sends_notices(statistics, world, people):
    assert_problem(await statistics.post(API, json=notice_body(world)), 401, "/problems/unauthorized")
    for who in ("city_head", "county_enforcement"):
        response = await statistics.post(API, json=notice_body(world), headers=people[who])
        assert_problem(response, 403, "/problems/role-required")


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject_type": "case"},  # a case notice without its case
        {"subject_type": "matter", "case_id": 5},
        {"subject_type": "inspection"},
        {"matter": ""},
        {"requirements": "  "},
        {"to_bureau_id": 0},
        {"to_bureau_id": "1"},
        {"sent_on": "2099-01-01"},
        {"sent_on": "2026-06-02", "received_on": "2026-06-01"},
        {"received_on": "01/06/2026"},
        {"received_on": "2099-01-01"},
        {"state": "answered"},
        {"from_bureau_id": 1},
        {"matter": "x" * 257},
    ],
)
async def test_bad_notices_are_refused(statistics, world, people, overrides):
    response = await statistics.post(API, json=notice_body(world, **overrides), headers=people["city_legal"])
    assert_problem(response, 422, "/problems/validation-error")


async def test_a_notice_about_a_case_names_a_case_of_the_receiving_subtree(
    statistics, registry, enforcement, world, people
):
    chain = await subjects(registry, world)
    lead = await new_lead(enforcement, world.officers[0], "enterprise", chain["enterprise"]["id"])
    case = await open_case(enforcement, world, lead)
    notice = await send(statistics, people, world, subject_type="case", case_id=case["id"])
    assert notice["case_id"] == case["id"]
    # The county's case is no case of its sibling county; a case that does not exist is none either.
    for target, case_id in ((world.other_county["id"], case["id"]), (world.county["id"], 999999999)):
        response = await statistics.post(
            API,
            json=notice_body(world, to_bureau_id=target, subject_type="case", case_id=case_id),
            headers=people["city_legal"],
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == "body.case_id"


async def test_sending_replays_under_the_same_idempotency_key(statistics, world, people):
    headers = {**people["city_legal"], "Idempotency-Key": f"notice-{uuid.uuid4()}"}
    first = await statistics.post(API, json=notice_body(world), headers=headers)
    again = await statistics.post(API, json=notice_body(world), headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]


# --- answering and objecting --------------------------------------------------------


async def test_the_receiving_bureau_answers_with_if_match(statistics, world, people):
    notice = await send(statistics, people, world)
    url = f"{API}/{notice['id']}/answer"
    body = {"answer": "已组织案卷评查整改，报告如下。"}
    assert_problem(
        await statistics.post(url, json=body, headers=people["county_legal"]),
        428,
        "/problems/precondition-required",
    )
    assert_problem(
        await statistics.post(url, json=body, headers={**people["county_legal"], "If-Match": '"9"'}),
        412,
        "/problems/precondition-failed",
    )
    # The sender, though it sees the notice, does not answer it; nor does an enforcement officer.
    assert_problem(
        await statistics.post(url, json=body, headers=if_match(people["city_legal"], notice)),
        403,
        "/problems/not-the-receiving-bureau",
    )
    assert_problem(
        await statistics.post(url, json=body, headers=if_match(people["county_enforcement"], notice)),
        403,
        "/problems/role-required",
    )
    assert_problem(
        await statistics.post(url, json=body, headers=if_match(people["other_legal"], notice)),
        404,
        "/problems/not-found",
    )
    assert_problem(
        await statistics.post(url, json={"answer": ""}, headers=if_match(people["county_legal"], notice)),
        422,
        "/problems/validation-error",
    )
    answered = await statistics.post(url, json=body, headers=if_match(people["county_head"], notice))
    assert answered.status_code == 200, answered.text
    assert answered.headers["ETag"] == '"2"'
    result = answered.json()
    assert (result["state"], result["answered_on"], result["answered_late"]) == (
        "answered",
        str(today()),
        False,
    )
    # Answered once: a second answer is not a step an answered notice takes.
    again = await statistics.post(url, json=body, headers=if_match(people["county_legal"], result))
    problem = assert_problem(again, 409, "/problems/invalid-transition")
    assert problem["allowed"] == []
    objection = await statistics.post(
        f"{API}/{notice['id']}/objection",
        json={"objection": "late"},
        headers=if_match(people["county_legal"], result),
    )
    assert_problem(objection, 409, "/problems/invalid-transition")


async def test_an_objection_within_five_working_days_and_the_senders_reply(statistics, world, people):
    notice = await send(statistics, people, world)
    objected = await statistics.post(
        f"{API}/{notice['id']}/objection",
        json={"objection": "该案已移送司法机关，不属本局整改范围。"},
        headers=if_match(people["county_legal"], notice),
    )
    assert objected.status_code == 200, objected.text
    notice = objected.json()
    assert (notice["state"], notice["objected_on"]) == ("objected", str(today()))
    assert notice["reply_due"] == add_working_days(today(), 10).isoformat()

    reply_url = f"{API}/{notice['id']}/objection-reply"
    reply = {"outcome": "dismissed", "reply": "移送不影响对执法过程的监督，请按期答复。"}
    # The receiving bureau does not reply to its own objection.
    assert_problem(
        await statistics.post(reply_url, json=reply, headers=if_match(people["county_legal"], notice)),
        403,
        "/problems/not-the-sending-bureau",
    )
    for bad in (
        {"outcome": "maybe", "reply": "x"},
        {"outcome": "upheld"},
        {"outcome": "upheld", "reply": " "},
    ):
        response = await statistics.post(reply_url, json=bad, headers=if_match(people["city_legal"], notice))
        assert_problem(response, 422, "/problems/validation-error")
    dismissed = await statistics.post(reply_url, json=reply, headers=if_match(people["city_legal"], notice))
    assert dismissed.status_code == 200, dismissed.text
    notice = dismissed.json()
    assert (notice["state"], notice["reply_outcome"]) == ("sent", "dismissed")
    # The objection dismissed, the answer is owed (by the same deadline).
    assert notice["answer_due"] == deadlines.due("supervision_notice_answer", today()).isoformat()
    answered = await statistics.post(
        f"{API}/{notice['id']}/answer",
        json={"answer": "已整改。"},
        headers=if_match(people["county_legal"], notice),
    )
    assert answered.json()["state"] == "answered"


async def test_an_upheld_objection_withdraws_the_notice(statistics, world, people):
    notice = await send(statistics, people, world)
    notice = (
        await statistics.post(
            f"{API}/{notice['id']}/objection",
            json={"objection": "通知所涉事项不属本局职权。"},
            headers=if_match(people["county_legal"], notice),
        )
    ).json()
    upheld = await statistics.post(
        f"{API}/{notice['id']}/objection-reply",
        json={"outcome": "upheld", "reply": "异议成立，撤回通知。"},
        headers=if_match(people["city_legal"], notice),
    )
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["state"] == "withdrawn"
    listed = await statistics.get(
        API, params={"state": "withdrawn", "limit": 500}, headers=people["county_legal"]
    )
    assert notice["id"] in [n["id"] for n in listed.json()["items"]]


async def test_an_objection_after_five_working_days_is_refused(statistics, world, people):
    notice = await send(statistics, people, world, sent_on="2026-06-01", received_on="2026-06-01")
    assert notice["objection_due"] == "2026-06-08"
    response = await statistics.post(
        f"{API}/{notice['id']}/objection",
        json={"objection": "too late"},
        headers=if_match(people["county_legal"], notice),
    )
    problem = assert_problem(response, 409, "/problems/objection-window-closed")
    assert problem["objection_due"] == "2026-06-08"
    got = await statistics.get(f"{API}/{notice['id']}", headers=people["county_legal"])
    assert got.json()["state"] == "sent" and got.headers["ETag"] == '"1"'


async def test_an_answer_not_given_in_time_raises_an_alert_once(statistics, world, people):
    notice = await send(statistics, people, world, sent_on="2026-06-01", received_on="2026-06-02")
    due = date.fromisoformat(notice["answer_due"])
    assert due == deadlines.due("supervision_notice_answer", date(2026, 6, 2))
    async with statistics.app.state.sessionmaker() as session:
        await supervision_notices_unanswered(session, due)  # due today: not late yet
        assert await alerts_of(session, "supervision_notice", [notice["id"]]) == []
        await supervision_notices_unanswered(session, date(2026, 6, 20))
        await supervision_notices_unanswered(session, date(2026, 6, 21))
        (alert,) = await alerts_of(session, "supervision_notice", [notice["id"]])
        await session.commit()
    assert alert["key"] == f"notice_answer:supervision_notice:{notice['id']}:past:{due}"
    assert (alert["kind"], alert["severity"], alert["due"]) == ("supervision_notice_answer", "past", due)

    # The county's and the city's legal-affairs bodies see the alert; the sibling county does not.
    for who, seen in (("county_legal", True), ("city_legal", True), ("other_legal", False)):
        items = (
            await statistics.get(
                "/api/v1/statistics/alerts",
                params={"kind": "supervision_notice_answer", "limit": 500},
                headers=people[who],
            )
        ).json()["items"]
        assert (alert["key"] in [i["key"] for i in items]) is seen, who

    # Answered late: recorded as late, and no further alert.
    answered = await statistics.post(
        f"{API}/{notice['id']}/answer",
        json={"answer": "迟复。"},
        headers=if_match(people["county_legal"], notice),
    )
    assert answered.json()["answered_late"] is True
    async with statistics.app.state.sessionmaker() as session:
        await supervision_notices_unanswered(session, date(2026, 7, 1))
        assert len(await alerts_of(session, "supervision_notice", [notice["id"]])) == 1


async def test_bad_notice_ids_and_list_filters_are_refused(statistics, people):
    for bad in ("0", "abc", "99999999999999999999"):
        assert_problem(
            await statistics.get(f"{API}/{bad}", headers=people["city_legal"]),
            422,
            "/problems/validation-error",
        )
    for params in ({"state": "lost"}, {"bureau_id": -1}, {"limit": 501}, {"cursor": "!"}):
        assert_problem(
            await statistics.get(API, params=params, headers=people["city_legal"]),
            422,
            "/problems/validation-error",
        )
    assert_problem(
        await statistics.get(f"{API}/999999999", headers=people["city_legal"]), 404, "/problems/not-found"
    )


async def test_an_answer_while_the_objection_awaits_its_reply_ends_the_notice(statistics, world, people):
    notice = await send(statistics, people, world)
    notice = (
        await statistics.post(
            f"{API}/{notice['id']}/objection",
            json={"objection": "异议。"},
            headers=if_match(people["county_legal"], notice),
        )
    ).json()
    assert_problem(
        await statistics.post(
            f"{API}/{notice['id']}/objection",
            json={"objection": "再次异议。"},
            headers=if_match(people["county_legal"], notice),
        ),
        409,
        "/problems/invalid-transition",
    )
    answered = await statistics.post(
        f"{API}/{notice['id']}/answer",
        json={"answer": "已整改。"},
        headers=if_match(people["county_legal"], notice),
    )
    assert answered.json()["state"] == "answered"
    reply = await statistics.post(
        f"{API}/{notice['id']}/objection-reply",
        json={"outcome": "dismissed", "reply": "不再需要。"},
        headers=if_match(people["city_legal"], answered.json()),
    )
    assert_problem(reply, 409, "/problems/invalid-transition")


async def test_an_objection_not_replied_to_in_time_alerts_the_sender(statistics, world, people):
    notice = await send(statistics, people, world)
    notice = (
        await statistics.post(
            f"{API}/{notice['id']}/objection",
            json={"objection": "异议。"},
            headers=if_match(people["county_legal"], notice),
        )
    ).json()
    reply_due = date.fromisoformat(notice["reply_due"])
    async with statistics.app.state.sessionmaker() as session:
        await objections_unreplied(session, reply_due)
        assert await alerts_of(session, "supervision_notice", [notice["id"]]) == []
        await objections_unreplied(session, add_working_days(reply_due, 1))
        await objections_unreplied(session, add_working_days(reply_due, 2))
        (alert,) = await alerts_of(session, "supervision_notice", [notice["id"]])
        await session.commit()
    assert alert["key"] == f"notice_reply:supervision_notice:{notice['id']}:past:{reply_due}"
    # The sender's alert: the city sees it, the county that objected does not.
    for who, seen in (("city_legal", True), ("county_legal", False)):
        items = (
            await statistics.get(
                "/api/v1/statistics/alerts",
                params={"kind": "supervision_notice_reply", "limit": 500},
                headers=people[who],
            )
        ).json()["items"]
        assert (alert["key"] in [i["key"] for i in items]) is seen, who

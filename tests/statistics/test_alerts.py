"""Oversight alerts are listed and acknowledged within the caller's subtree: another bureau's
alert answers the same 404 as a missing one; an acknowledgement needs If-Match and happens once."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from services.common.auth import Role
from services.statistics.oversight.alerts import raise_alert
from tests.conftest import assert_problem, auth
from tests.statistics.oversight_helpers import new_id

API = "/api/v1/statistics/alerts"


async def raise_one(statistics, bureau: dict, *, kind: str = "case_deadline", severity: str = "past") -> dict:
    key = f"{kind}:case:{uuid.uuid4().hex}:{severity}"
    async with statistics.app.state.sessionmaker() as session:
        assert await raise_alert(
            session,
            key=key,
            kind=kind,
            severity=severity,
            subject_type="case",
            subject_id=new_id(),
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            message="Case 测试 deadline passed",
            due=date(2026, 6, 1),
            details={"rule": "investigation"},
        )
        # The same key again raises nothing.
        assert not await raise_alert(
            session,
            key=key,
            kind=kind,
            severity=severity,
            subject_type="case",
            subject_id=1,
            bureau_id=bureau["id"],
            bureau_path=bureau["path"],
            message="again",
        )
        await session.commit()
    return {"key": key}


@pytest.fixture
def tokens(world, token_for):
    return {
        "city_legal": world.headers(world.legal),
        "county_head": world.headers(world.head),
        "county_legal": auth(token_for(world.county, roles=(Role.LEGAL,))),
        "other_legal": auth(token_for(world.other_county, roles=(Role.LEGAL,))),
        "other_admin": auth(token_for(world.other_county, roles=(Role.ADMIN,))),
        "county_enforcement": world.headers(world.officers[0]),
    }


async def all_pages(statistics, headers, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await statistics.get(API, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def find(statistics, headers, key: str, **params) -> dict | None:
    kind = key.split(":")[0]
    for item in await all_pages(statistics, headers, kind=kind, limit=500, **params):
        if item["key"] == key:
            return item
    return None


async def test_alerts_are_listed_within_the_callers_subtree(statistics, world, tokens):
    kind = f"test_{uuid.uuid4().hex[:8]}"
    county = await raise_one(statistics, world.county, kind=kind)
    other = await raise_one(statistics, world.other_county, kind=kind)

    city = await all_pages(statistics, tokens["city_legal"], kind=kind)
    assert {a["key"] for a in city} == {county["key"], other["key"]}
    assert [a["key"] for a in await all_pages(statistics, tokens["county_legal"], kind=kind)] == [
        county["key"]
    ]
    assert [a["key"] for a in await all_pages(statistics, tokens["other_admin"], kind=kind)] == [other["key"]]
    # The head reads them too; filtered by bureau, the city sees one.
    assert [a["key"] for a in await all_pages(statistics, tokens["county_head"], kind=kind)] == [
        county["key"]
    ]
    by_bureau = await all_pages(
        statistics, tokens["city_legal"], kind=kind, bureau_id=world.other_county["id"]
    )
    assert [a["key"] for a in by_bureau] == [other["key"]]
    # Another county's bureau named in the filter finds nothing (not an error, not its alerts).
    assert (
        await all_pages(statistics, tokens["county_legal"], kind=kind, bureau_id=world.other_county["id"])
        == []
    )


async def test_the_list_pages_newest_first_and_filters(statistics, world, tokens):
    kind = f"test_{uuid.uuid4().hex[:8]}"
    raised = [
        await raise_one(statistics, world.county, kind=kind, severity=s) for s in ("near", "past", "near")
    ]
    first = await statistics.get(API, params={"kind": kind, "limit": 2}, headers=tokens["county_legal"])
    assert first.status_code == 200
    page = first.json()
    assert [a["key"] for a in page["items"]] == [raised[2]["key"], raised[1]["key"]]
    second = await statistics.get(
        API, params={"kind": kind, "limit": 2, "cursor": page["next_cursor"]}, headers=tokens["county_legal"]
    )
    assert [a["key"] for a in second.json()["items"]] == [raised[0]["key"]]
    assert second.json()["next_cursor"] is None
    near = await all_pages(statistics, tokens["county_legal"], kind=kind, severity="near")
    assert {a["key"] for a in near} == {raised[0]["key"], raised[2]["key"]}
    assert await all_pages(statistics, tokens["county_legal"], kind=kind, acknowledged="true") == []
    assert len(await all_pages(statistics, tokens["county_legal"], kind=kind, acknowledged="false")) == 3


@pytest.mark.parametrize(
    "params",
    [
        {"severity": "urgent"},
        {"limit": 0},
        {"limit": 501},
        {"cursor": "not a cursor"},
        {"cursor": "WzEsMl0"},  # a cursor of two keys, not one this list issued
        {"bureau_id": 0},
        {"kind": "Robert'); DROP TABLE alert;--"},
        {"acknowledged": "maybe"},
    ],
)
async def test_bad_list_parameters_are_refused(statistics, tokens, params):
    response = await statistics.get(API, params=params, headers=tokens["city_legal"])
    assert_problem(response, 422, "/problems/validation-error")


async def test_reading_and_acknowledging_need_a_token_and_a_role(statistics, world, tokens):
    alert = await find(statistics, tokens["county_legal"], (await raise_one(statistics, world.county))["key"])
    assert_problem(await statistics.get(API), 401, "/problems/unauthorized")
    assert_problem(await statistics.get(f"{API}/{alert['id']}"), 401, "/problems/unauthorized")
    enforcement = tokens["county_enforcement"]
    assert_problem(await statistics.get(API, headers=enforcement), 403, "/problems/role-required")
    assert_problem(
        await statistics.get(f"{API}/{alert['id']}", headers=enforcement), 403, "/problems/role-required"
    )
    response = await statistics.post(
        f"{API}/{alert['id']}/acknowledgement",
        json={"note": "seen"},
        headers={**enforcement, "If-Match": '"1"'},
    )
    assert_problem(response, 403, "/problems/role-required")


async def test_another_countys_alert_is_not_found_like_a_missing_one(statistics, world, tokens):
    alert = await find(statistics, tokens["county_legal"], (await raise_one(statistics, world.county))["key"])
    for path in (f"{API}/{alert['id']}", f"{API}/999999999999"):
        assert_problem(await statistics.get(path, headers=tokens["other_legal"]), 404, "/problems/not-found")
    for alert_id in (alert["id"], 999999999999):
        response = await statistics.post(
            f"{API}/{alert_id}/acknowledgement",
            json={"note": "not mine"},
            headers={**tokens["other_legal"], "If-Match": '"1"'},
        )
        assert_problem(response, 404, "/problems/not-found")
    # Unchanged by the attempt.
    response = await statistics.get(f"{API}/{alert['id']}", headers=tokens["county_legal"])
    assert response.json()["acknowledged_at"] is None
    assert response.headers["ETag"] == '"1"'


async def test_an_alert_is_acknowledged_once_with_if_match_and_a_note(statistics, world, tokens):
    alert = await find(statistics, tokens["county_legal"], (await raise_one(statistics, world.county))["key"])
    url = f"{API}/{alert['id']}/acknowledgement"
    headers = tokens["county_head"]
    got = await statistics.get(f"{API}/{alert['id']}", headers=headers)
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    assert got.json()["details"] == {"rule": "investigation"}

    assert_problem(
        await statistics.post(url, json={"note": "x"}, headers=headers),
        428,
        "/problems/precondition-required",
    )
    assert_problem(
        await statistics.post(url, json={"note": "x"}, headers={**headers, "If-Match": "*"}),
        428,
        "/problems/precondition-required",
    )
    assert_problem(
        await statistics.post(url, json={"note": "x"}, headers={**headers, "If-Match": '"7"'}),
        412,
        "/problems/precondition-failed",
    )
    for body in ({}, {"note": "   "}, {"note": "x" * 2001}, {"note": "x", "acknowledged_by": "someone"}):
        response = await statistics.post(url, json=body, headers={**headers, "If-Match": '"1"'})
        assert_problem(response, 422, "/problems/validation-error")

    done = await statistics.post(
        url, json={"note": "  已督促办案人员  "}, headers={**headers, "If-Match": '"1"'}
    )
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] == '"2"'
    body = done.json()
    assert body["acknowledgement"] == "已督促办案人员"
    assert body["acknowledged_at"] is not None and body["acknowledged_by"]
    assert body["version"] == 2

    again = await statistics.post(
        url, json={"note": "again"}, headers={**tokens["city_legal"], "If-Match": '"2"'}
    )
    assert_problem(again, 409, "/problems/alert-already-acknowledged")
    stale = await statistics.post(url, json={"note": "again"}, headers={**headers, "If-Match": '"1"'})
    assert_problem(stale, 412, "/problems/precondition-failed")
    assert await find(statistics, headers, alert["key"], acknowledged="true") is not None
    assert await find(statistics, headers, alert["key"], acknowledged="false") is None


async def test_bad_alert_ids_are_refused(statistics, tokens):
    for bad in ("0", "-1", "abc", "99999999999999999999"):
        assert_problem(
            await statistics.get(f"{API}/{bad}", headers=tokens["city_legal"]),
            422,
            "/problems/validation-error",
        )

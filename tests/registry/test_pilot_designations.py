"""Pilot designations (试点单位): a provincial pilot unit names its one grassroots pilot unit."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from services.common.dates import today
from services.registry.models import Bureau, PilotDesignation
from services.registry.network.service import insert_bureau
from tests.conftest import auth
from tests.factories import audit_entries, create_bureau, create_provincial_unit, unique

BUREAUS = "/api/v1/registry/bureaus"


def designations_url(unit: dict) -> str:
    return f"{BUREAUS}/{unit['id']}/pilot-designations"


async def designations_of(registry, unit: dict) -> int:
    """How many designations the unit has: "nothing written" on the test's own rows."""
    async with registry.app.state.sessionmaker() as session:
        query = select(func.count()).where(PilotDesignation.provincial_bureau_id == unit["id"])
        return (await session.exec(query)).scalar_one()


async def actions(registry, designation: dict) -> list[str]:
    """What the audit chain recorded about the test's own designation."""
    return [e["action"] for e in await audit_entries(registry, "pilot_designation", designation["id"])]


async def bureau(registry, token: str, bureau_id: int) -> dict:
    response = await registry.get(f"{BUREAUS}/{bureau_id}", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


async def designate(registry, token: str, unit: dict, grassroots: dict, reported_on: str = "2008-06-30"):
    return await registry.post(
        designations_url(unit),
        json={"grassroots_bureau_id": grassroots["id"], "reported_on": reported_on},
        headers=auth(token),
    )


async def withdraw(registry, token: str, unit: dict, designation: dict, if_match: str | None = '"1"', **body):
    payload = {"withdrawn_on": "2009-03-01", "reason": "机构调整，改由其他单位承担试点", **body}
    headers = {**auth(token), **({"If-Match": if_match} if if_match else {})}
    return await registry.post(
        f"{designations_url(unit)}/{designation['id']}/withdrawal", json=payload, headers=headers
    )


@pytest.fixture
async def qs_unit(registry, token_for):
    """A quality-supervision provincial pilot unit of the test's own, with a city and a county."""
    national = token_for()
    unit = await create_provincial_unit(registry, national, "quality_supervision")
    city = await create_bureau(registry, national, unit, "city", "130100")
    county = await create_bureau(registry, national, city, "county", "130102")
    other_city = await create_bureau(registry, national, unit, "city", "130200")
    return {"unit": unit, "city": city, "county": county, "other_city": other_city}


@pytest.fixture
async def ee_unit(registry, token_for):
    """An entry-exit provincial pilot unit of the test's own, with two branch bureaus."""
    national = token_for()
    unit = await create_provincial_unit(registry, national, "entry_exit", "450000")
    branch = await create_bureau(registry, national, unit, "branch", "450100")
    other_branch = await create_bureau(registry, national, unit, "branch", "450200")
    return {"unit": unit, "branch": branch, "other_branch": other_branch}


class TestCreatePilotDesignation:
    async def test_quality_supervision_unit_names_a_city_bureau(self, registry, token_for, qs_unit):
        unit, city = qs_unit["unit"], qs_unit["city"]
        token = token_for()
        response = await designate(registry, token, unit, city)
        assert response.status_code == 201, response.text
        designation = response.json()
        assert designation["provincial_bureau_id"] == unit["id"]
        assert designation["grassroots_bureau_id"] == city["id"]
        assert designation["grassroots_bureau_name"] == city["name"]
        assert designation["grassroots_bureau_level"] == "city"
        assert designation["reported_on"] == "2008-06-30"
        assert designation["current"] is True
        assert designation["withdrawn_on"] is None and designation["version"] == 1
        assert response.headers["location"] == f"{designations_url(unit)}/{designation['id']}"
        assert response.headers["etag"] == '"1"'
        assert await actions(registry, designation) == ["pilot_designation.created"]
        # The named bureau's pilot role follows, as a new version of its record.
        named = await bureau(registry, token, city["id"])
        assert named["pilot"] == "grassroots"
        assert named["version"] == city["version"] + 1

    async def test_a_county_bureau_may_be_named(self, registry, token_for, qs_unit):
        response = await designate(registry, token_for(), qs_unit["unit"], qs_unit["county"])
        assert response.status_code == 201, response.text
        assert response.json()["grassroots_bureau_level"] == "county"

    async def test_entry_exit_unit_names_a_branch_bureau(self, registry, token_for, ee_unit):
        response = await designate(registry, token_for(), ee_unit["unit"], ee_unit["branch"])
        assert response.status_code == 201, response.text
        assert response.json()["grassroots_bureau_level"] == "branch"

    async def test_the_unit_s_own_administrator_names_it(self, registry, token_for, qs_unit):
        token = token_for(qs_unit["unit"])
        response = await designate(
            registry, token, qs_unit["unit"], qs_unit["city"], reported_on=str(today())
        )
        assert response.status_code == 201, response.text

    async def test_a_second_designation_is_refused_while_one_is_current(self, registry, token_for, qs_unit):
        token = token_for()
        first = await designate(registry, token, qs_unit["unit"], qs_unit["city"])
        assert first.status_code == 201, first.text
        response = await designate(registry, token, qs_unit["unit"], qs_unit["other_city"])
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/pilot-already-designated"
        assert problem["current_designation_id"] == first.json()["id"]
        assert await designations_of(registry, qs_unit["unit"]) == 1
        recorded = await audit_entries(
            registry, "pilot_designation", provincial_bureau_id=qs_unit["unit"]["id"]
        )
        assert [e["entity_id"] for e in recorded] == [str(first.json()["id"])]
        untouched = await bureau(registry, token, qs_unit["other_city"]["id"])
        assert untouched["pilot"] == "none" and untouched["version"] == qs_unit["other_city"]["version"]

    async def test_concurrent_designations_leave_one(self, registry, token_for, qs_unit):
        token = token_for()
        candidates = [qs_unit["city"], qs_unit["other_city"], qs_unit["county"]]
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            responses = await asyncio.gather(
                *(designate(client, token, qs_unit["unit"], candidate) for candidate in candidates)
            )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409], [r.text for r in responses]
        assert {r.json()["type"] for r in responses if r.status_code == 409} == {
            "/problems/pilot-already-designated"
        }
        assert await designations_of(registry, qs_unit["unit"]) == 1
        named = next(r.json()["grassroots_bureau_id"] for r in responses if r.status_code == 201)
        pilots = {c["id"]: (await bureau(registry, token, c["id"]))["pilot"] for c in candidates}
        assert pilots == {c["id"]: "grassroots" if c["id"] == named else "none" for c in candidates}

    async def test_a_bureau_that_is_not_a_pilot_unit_names_none(self, registry, token_for):
        token = token_for()
        unit = await create_provincial_unit(registry, token, "quality_supervision", pilot="none")
        city = await create_bureau(registry, token, unit, "city", "130100")
        response = await designate(registry, token, unit, city)
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/not-a-pilot-unit"
        assert await designations_of(registry, unit) == 0
        assert (await bureau(registry, token, city["id"]))["pilot"] == "none"

    async def test_a_city_bureau_is_not_a_pilot_unit(self, registry, token_for, qs_unit):
        response = await designate(registry, token_for(), qs_unit["city"], qs_unit["county"])
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/not-a-pilot-unit"
        assert await designations_of(registry, qs_unit["city"]) == 0

    async def test_a_bureau_outside_the_unit_s_subtree_is_refused(self, registry, token_for, qs_unit):
        token = token_for()
        elsewhere = await create_provincial_unit(registry, token, "quality_supervision")
        foreign_city = await create_bureau(registry, token, elsewhere, "city", "130300")
        response = await designate(registry, token, qs_unit["unit"], foreign_city)
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/grassroots-outside-unit"
        assert await designations_of(registry, qs_unit["unit"]) == 0
        assert (await bureau(registry, token, foreign_city["id"]))["pilot"] == "none"

    async def test_the_unit_cannot_name_itself(self, registry, token_for, qs_unit):
        response = await designate(registry, token_for(), qs_unit["unit"], qs_unit["unit"])
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/grassroots-outside-unit"
        assert await designations_of(registry, qs_unit["unit"]) == 0

    async def test_a_bureau_of_the_wrong_level_is_refused(self, registry, token_for, qs_unit):
        # The tree rules never put a branch bureau under a quality-supervision unit; an older
        # record might, and a branch is no grassroots unit of that system.
        async with registry.app.state.sessionmaker() as session:
            parent = await session.get(Bureau, qs_unit["unit"]["id"])
            odd = await insert_bureau(
                session,
                parent,
                name=unique("分局"),
                level="branch",
                system="quality_supervision",
                division_code="130100",
                pilot="none",
            )
            await session.commit()
            odd_id = odd.id
        response = await designate(registry, token_for(), qs_unit["unit"], {"id": odd_id})
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/grassroots-level-mismatch"
        assert await designations_of(registry, qs_unit["unit"]) == 0

    async def test_an_unknown_bureau_is_a_field_error(self, registry, token_for, qs_unit):
        response = await designate(registry, token_for(), qs_unit["unit"], {"id": 2**53 - 1})
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["loc"] == "body.grassroots_bureau_id" and error["type"] == "bureau_not_found"
        assert await designations_of(registry, qs_unit["unit"]) == 0

    async def test_a_bureau_outside_the_principal_s_scope_reads_as_unknown(
        self, registry, token_for, qs_unit
    ):
        elsewhere = await create_provincial_unit(registry, token_for(), "quality_supervision")
        foreign_city = await create_bureau(registry, token_for(), elsewhere, "city", "130300")
        unknown = await designate(registry, token_for(qs_unit["unit"]), qs_unit["unit"], {"id": 2**53 - 1})
        foreign = await designate(registry, token_for(qs_unit["unit"]), qs_unit["unit"], foreign_city)
        assert foreign.status_code == 422
        assert (
            foreign.json()["errors"][0]["type"] == unknown.json()["errors"][0]["type"] == "bureau_not_found"
        )
        assert await designations_of(registry, qs_unit["unit"]) == 0

    @pytest.mark.parametrize(
        ("body", "loc", "kind"),
        [
            ({"reported_on": "future"}, "body.reported_on", "date_in_future"),
            ({"reported_on": 1214784000}, "body.reported_on", "date_type"),
            ({"reported_on": "2008-02-30"}, "body.reported_on", "date_from_datetime_parsing"),
            ({"reported_on": None}, "body.reported_on", "date_type"),
            ({"grassroots_bureau_id": "1"}, "body.grassroots_bureau_id", "value_error"),
            ({"grassroots_bureau_id": 0}, "body.grassroots_bureau_id", "greater_than_equal"),
            ({"extra": 1}, "body.extra", "extra_forbidden"),
        ],
    )
    async def test_malformed_payloads(self, registry, token_for, qs_unit, body, loc, kind):
        payload = {"grassroots_bureau_id": qs_unit["city"]["id"], "reported_on": "2008-06-30", **body}
        if payload["reported_on"] == "future":
            payload["reported_on"] = str(today() + timedelta(days=1))
        response = await registry.post(
            designations_url(qs_unit["unit"]), json=payload, headers=auth(token_for())
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        assert {(e["loc"], e["type"]) for e in problem["errors"]} == {(loc, kind)}
        assert await designations_of(registry, qs_unit["unit"]) == 0

    async def test_missing_fields(self, registry, token_for, qs_unit):
        response = await registry.post(designations_url(qs_unit["unit"]), json={}, headers=auth(token_for()))
        assert response.status_code == 422
        assert {e["loc"] for e in response.json()["errors"]} == {
            "body.grassroots_bureau_id",
            "body.reported_on",
        }

    @pytest.mark.parametrize("role", ["supervision", "enforcement", "legal", "head", "system"])
    async def test_only_administrators_designate(self, registry, token_for, qs_unit, role):
        response = await designate(
            registry, token_for(qs_unit["unit"], roles=(role,)), qs_unit["unit"], qs_unit["city"]
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await designations_of(registry, qs_unit["unit"]) == 0

    async def test_out_of_scope_unit_reads_as_missing(self, registry, token_for, qs_unit):
        # An administrator of another province, and one of a city below the unit.
        other = await create_provincial_unit(registry, token_for(), "quality_supervision")
        for token in (token_for(other), token_for(qs_unit["city"])):
            outside = await designate(registry, token, qs_unit["unit"], qs_unit["city"])
            missing = await registry.post(
                f"{BUREAUS}/{2**53 - 1}/pilot-designations",
                json={"grassroots_bureau_id": qs_unit["city"]["id"], "reported_on": "2008-06-30"},
                headers=auth(token),
            )
            assert outside.status_code == missing.status_code == 404
            assert outside.json()["type"] == missing.json()["type"] == "/problems/not-found"
            assert outside.json()["detail"].replace(str(qs_unit["unit"]["id"]), "<id>") == missing.json()[
                "detail"
            ].replace(str(2**53 - 1), "<id>")
        assert await designations_of(registry, qs_unit["unit"]) == 0


class TestWithdrawPilotDesignation:
    async def test_withdrawal_frees_the_place_for_another(self, registry, token_for, qs_unit):
        token = token_for(qs_unit["unit"])
        first = (await designate(registry, token, qs_unit["unit"], qs_unit["city"])).json()
        response = await withdraw(registry, token, qs_unit["unit"], first)
        assert response.status_code == 200, response.text
        withdrawn = response.json()
        assert withdrawn["current"] is False
        assert withdrawn["withdrawn_on"] == "2009-03-01"
        assert withdrawn["withdrawal_reason"] == "机构调整，改由其他单位承担试点"
        assert withdrawn["version"] == 2 and response.headers["etag"] == '"2"'
        assert await actions(registry, first) == ["pilot_designation.created", "pilot_designation.withdrawn"]
        city = await bureau(registry, token, qs_unit["city"]["id"])
        assert city["pilot"] == "none" and city["version"] == qs_unit["city"]["version"] + 2
        second = await designate(registry, token, qs_unit["unit"], qs_unit["other_city"], "2009-03-02")
        assert second.status_code == 201, second.text
        assert (await bureau(registry, token, qs_unit["other_city"]["id"]))["pilot"] == "grassroots"

    async def test_the_same_bureau_may_be_named_again(self, registry, token_for, ee_unit):
        token = token_for()
        first = (await designate(registry, token, ee_unit["unit"], ee_unit["branch"])).json()
        assert (await withdraw(registry, token, ee_unit["unit"], first)).status_code == 200
        again = await designate(registry, token, ee_unit["unit"], ee_unit["branch"], "2010-01-04")
        assert again.status_code == 201, again.text
        assert (await bureau(registry, token, ee_unit["branch"]["id"]))["pilot"] == "grassroots"

    async def test_missing_if_match_is_refused(self, registry, token_for, qs_unit):
        token = token_for()
        designation = (await designate(registry, token, qs_unit["unit"], qs_unit["city"])).json()
        response = await withdraw(registry, token, qs_unit["unit"], designation, if_match=None)
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        await self.assert_still_current(registry, token, qs_unit, designation)

    async def test_stale_if_match_is_refused(self, registry, token_for, qs_unit):
        token = token_for()
        designation = (await designate(registry, token, qs_unit["unit"], qs_unit["city"])).json()
        response = await withdraw(registry, token, qs_unit["unit"], designation, if_match='"7"')
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        await self.assert_still_current(registry, token, qs_unit, designation)

    async def test_a_withdrawn_designation_cannot_be_withdrawn_again(self, registry, token_for, qs_unit):
        token = token_for()
        designation = (await designate(registry, token, qs_unit["unit"], qs_unit["city"])).json()
        assert (await withdraw(registry, token, qs_unit["unit"], designation)).status_code == 200
        again = await withdraw(
            registry, token, qs_unit["unit"], designation, if_match='"2"', withdrawn_on="2010-01-01"
        )
        assert again.status_code == 409
        assert again.json()["type"] == "/problems/pilot-designation-withdrawn"
        assert await actions(registry, designation) == [
            "pilot_designation.created",
            "pilot_designation.withdrawn",
        ]
        stored = await registry.get(
            f"{designations_url(qs_unit['unit'])}/{designation['id']}", headers=auth(token)
        )
        assert stored.json()["withdrawn_on"] == "2009-03-01" and stored.json()["version"] == 2

    async def test_withdrawal_before_the_report_is_refused(self, registry, token_for, qs_unit):
        token = token_for()
        designation = (await designate(registry, token, qs_unit["unit"], qs_unit["city"])).json()
        response = await withdraw(registry, token, qs_unit["unit"], designation, withdrawn_on="2008-06-29")
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/withdrawal-before-report"
        await self.assert_still_current(registry, token, qs_unit, designation)

    @pytest.mark.parametrize(
        ("body", "loc", "kind"),
        [
            ({"withdrawn_on": "future"}, "body.withdrawn_on", "date_in_future"),
            ({"reason": " "}, "body.reason", "string_too_short"),
            ({"reason": "x" * 2001}, "body.reason", "string_too_long"),
            ({"reason": "撤回\u0000"}, "body", "value_error"),
            ({"at": "2009-01-01"}, "body.at", "extra_forbidden"),
        ],
    )
    async def test_malformed_withdrawals(self, registry, token_for, qs_unit, body, loc, kind):
        token = token_for()
        designation = (await designate(registry, token, qs_unit["unit"], qs_unit["city"])).json()
        if body.get("withdrawn_on") == "future":
            body = {"withdrawn_on": str(today() + timedelta(days=1))}
        response = await withdraw(registry, token, qs_unit["unit"], designation, **body)
        assert response.status_code == 422
        assert {(e["loc"], e["type"]) for e in response.json()["errors"]} == {(loc, kind)}
        await self.assert_still_current(registry, token, qs_unit, designation)

    async def test_another_unit_s_designation_is_not_found(self, registry, token_for, qs_unit, ee_unit):
        token = token_for()
        theirs = (await designate(registry, token, ee_unit["unit"], ee_unit["branch"])).json()
        response = await withdraw(registry, token, qs_unit["unit"], theirs)
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert (await bureau(registry, token, ee_unit["branch"]["id"]))["pilot"] == "grassroots"

    @pytest.mark.parametrize("role", ["supervision", "head"])
    async def test_only_administrators_withdraw(self, registry, token_for, qs_unit, role):
        designation = (await designate(registry, token_for(), qs_unit["unit"], qs_unit["city"])).json()
        token = token_for(qs_unit["unit"], roles=(role,))
        response = await withdraw(registry, token, qs_unit["unit"], designation)
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        await self.assert_still_current(registry, token_for(), qs_unit, designation)

    async def test_out_of_scope_withdrawal_reads_as_missing(self, registry, token_for, qs_unit):
        designation = (await designate(registry, token_for(), qs_unit["unit"], qs_unit["city"])).json()
        response = await withdraw(registry, token_for(qs_unit["city"]), qs_unit["unit"], designation)
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        await self.assert_still_current(registry, token_for(), qs_unit, designation)

    @staticmethod
    async def assert_still_current(registry, token, qs_unit, designation) -> None:
        stored = await registry.get(
            f"{designations_url(qs_unit['unit'])}/{designation['id']}", headers=auth(token)
        )
        assert stored.json()["current"] is True and stored.json()["version"] == 1
        assert (await bureau(registry, token, designation["grassroots_bureau_id"]))["pilot"] == "grassroots"


class TestReadPilotDesignations:
    async def test_history_oldest_first_in_pages(self, registry, token_for, qs_unit):
        token = token_for(qs_unit["unit"], roles=("supervision",))
        admin = token_for()
        ids = []
        for n, bureau_key in enumerate(("city", "other_city", "county")):
            created = (
                await designate(registry, admin, qs_unit["unit"], qs_unit[bureau_key], f"200{n}-06-30")
            ).json()
            ids.append(created["id"])
            if bureau_key != "county":
                assert (
                    await withdraw(registry, admin, qs_unit["unit"], created, withdrawn_on=f"200{n}-12-31")
                ).status_code == 200
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = await registry.get(designations_url(qs_unit["unit"]), params=params, headers=auth(token))
            assert page.status_code == 200, page.text
            seen += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert [d["id"] for d in seen] == ids
        assert [d["current"] for d in seen] == [False, False, True]

    async def test_read_one_with_its_etag(self, registry, token_for, qs_unit):
        created = (await designate(registry, token_for(), qs_unit["unit"], qs_unit["city"])).json()
        response = await registry.get(
            f"{designations_url(qs_unit['unit'])}/{created['id']}",
            headers=auth(token_for(qs_unit["unit"], roles=("legal",))),
        )
        assert response.status_code == 200
        assert response.headers["etag"] == '"1"'
        assert response.json() == created

    async def test_out_of_scope_history_reads_as_missing(self, registry, token_for, qs_unit):
        created = (await designate(registry, token_for(), qs_unit["unit"], qs_unit["city"])).json()
        token = token_for(qs_unit["city"])  # below the unit: the unit is outside its scope
        listing = await registry.get(designations_url(qs_unit["unit"]), headers=auth(token))
        one = await registry.get(f"{designations_url(qs_unit['unit'])}/{created['id']}", headers=auth(token))
        assert listing.status_code == one.status_code == 404
        assert listing.json()["type"] == one.json()["type"] == "/problems/not-found"

    async def test_a_designation_under_another_unit_s_path_is_not_found(
        self, registry, token_for, qs_unit, ee_unit
    ):
        theirs = (await designate(registry, token_for(), ee_unit["unit"], ee_unit["branch"])).json()
        response = await registry.get(
            f"{designations_url(qs_unit['unit'])}/{theirs['id']}", headers=auth(token_for())
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    async def test_bad_cursor(self, registry, token_for, qs_unit):
        response = await registry.get(
            designations_url(qs_unit["unit"]), params={"cursor": "WyJ4Il0"}, headers=auth(token_for())
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "query.cursor"


class TestBureauPilotFollowsTheDesignation:
    """``pilot`` on the bureau record never contradicts the designations."""

    async def test_a_named_bureau_cannot_drop_its_role_through_the_record(self, registry, token_for, qs_unit):
        token = token_for()
        await designate(registry, token, qs_unit["unit"], qs_unit["city"])
        city = await bureau(registry, token, qs_unit["city"]["id"])
        response = await registry.patch(
            f"{BUREAUS}/{city['id']}",
            json={"pilot": "none"},
            headers={**auth(token), "If-Match": f'"{city["version"]}"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/pilot-designation-required"
        assert (await bureau(registry, token, city["id"]))["pilot"] == "grassroots"

    async def test_a_unit_naming_a_grassroots_pilot_stays_a_pilot_unit(self, registry, token_for, qs_unit):
        token = token_for()
        await designate(registry, token, qs_unit["unit"], qs_unit["city"])
        unit = await bureau(registry, token, qs_unit["unit"]["id"])
        response = await registry.patch(
            f"{BUREAUS}/{unit['id']}",
            json={"pilot": "none"},
            headers={**auth(token), "If-Match": f'"{unit["version"]}"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/pilot-designation-current"
        assert (await bureau(registry, token, unit["id"]))["pilot"] == "provincial"

    async def test_a_unit_naming_none_may_stop_being_a_pilot_unit(self, registry, token_for, qs_unit):
        token = token_for()
        unit = qs_unit["unit"]
        response = await registry.patch(
            f"{BUREAUS}/{unit['id']}",
            json={"pilot": "none"},
            headers={**auth(token), "If-Match": f'"{unit["version"]}"'},
        )
        assert response.status_code == 200, response.text
        assert response.json()["pilot"] == "none"

    async def test_a_bureau_is_not_created_as_a_grassroots_pilot(self, registry, token_for, qs_unit):
        name = unique("县局")
        response = await registry.post(
            BUREAUS,
            json={
                "parent_id": qs_unit["city"]["id"],
                "name": name,
                "level": "county",
                "division_code": "130104",
                "pilot": "grassroots",
            },
            headers=auth(token_for()),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/pilot-designation-required"
        listing = await registry.get(
            BUREAUS, params={"parent_id": qs_unit["city"]["id"]}, headers=auth(token_for())
        )
        assert name not in {b["name"] for b in listing.json()["items"]}

"""Inspections (监督检查) by the certification supervision body: rules, scope, roles, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.common.dates import today
from services.registry.models import OUTBOX, Inspection
from services.registry.subjects.models import Enterprise
from tests.conftest import assert_problem, auth
from tests.factories import (
    audit_entries,
    chain_of,
    create_bureau,
    create_officer,
    create_provincial_unit,
    store,
    unique,
)

INSPECTIONS = "/api/v1/registry/inspections"
OFFICERS = "/api/v1/registry/officers"
EVENTS = "/api/v1/registry/events"
REFERRED = "registry.inspection.referred"


@pytest.fixture(scope="module")
async def network(registry, token_for):
    """A quality-supervision unit with city A (county A1 under it) and city B, another
    province's unit; officers in each; a certification chain kept by the unit."""
    national = token_for()
    unit = await create_provincial_unit(registry, national, "quality_supervision", pilot="none")
    city_a = await create_bureau(registry, national, unit, "city", "130100")
    county_a1 = await create_bureau(registry, national, city_a, "county", "130102")
    city_b = await create_bureau(registry, national, unit, "city", "130200")
    other = await create_provincial_unit(registry, national, "quality_supervision", "150000", pilot="none")
    officers = {
        "a1": await create_officer(registry, national, city_a, body="supervision", credential=False),
        "a2": await create_officer(registry, national, city_a, body="supervision", credential=False),
        "county": await create_officer(registry, national, county_a1, body="supervision", credential=False),
        "b": await create_officer(registry, national, city_b, body="supervision", credential=False),
        "other": await create_officer(registry, national, other, body="supervision", credential=False),
    }
    return {
        "unit": unit,
        "city_a": city_a,
        "county_a1": county_a1,
        "city_b": city_b,
        "other": other,
        "officers": officers,
        "chain": await chain_of(registry, unit),
    }


@pytest.fixture
async def target(registry, network):
    """An enterprise of the test's own to inspect, so "nothing written" is counted on it."""
    return (await chain_of(registry, network["unit"]))["enterprise"]


def writer(token_for, bureau: dict, role: str = "supervision") -> str:
    return token_for(bureau, roles=(role,))


def payload(network, target, **changes) -> dict:
    return {
        "target_type": "enterprise",
        "target_id": target.id,
        "inspected_on": "2008-09-12",
        "officer_ids": [network["officers"]["a1"]["id"], network["officers"]["a2"]["id"]],
        "findings": "现场检查获证产品与型式试验样品一致，标志使用规范",
        "result": "compliant",
        **changes,
    }


async def inspections_of(registry, target_type: str, target_id: int) -> int:
    async with registry.app.state.sessionmaker() as session:
        query = select(func.count()).where(
            Inspection.target_type == target_type, Inspection.target_id == target_id
        )
        return (await session.exec(query)).scalar_one()


async def referrals_about(registry, target) -> list[dict]:
    """The referral events in the registry's outbox about the test's own target."""
    async with registry.app.state.sessionmaker() as session:
        table = OUTBOX.table
        query = (
            select(table)
            .where(table.c.type == REFERRED, table.c.payload["target_id"].as_integer() == target.id)
            .order_by(table.c.occurred_at)
        )
        return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def mark_outbox(registry, event_id: str, **values) -> None:
    """Move an outbox row on as the relay would (enqueued, then delivered)."""
    async with registry.app.state.sessionmaker() as session:
        table = OUTBOX.table
        await session.exec(table.update().where(table.c.id == uuid.UUID(event_id)).values(**values))
        await session.commit()


async def record(registry, token: str, body: dict) -> dict:
    response = await registry.post(INSPECTIONS, json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    return response.json()


def problem_of(response, status: int, slug: str) -> dict:
    return assert_problem(response, status, f"/problems/{slug}")


async def actions(registry, inspection: dict) -> list[str]:
    """What the audit chain recorded about the test's own inspection."""
    return [e["action"] for e in await audit_entries(registry, "inspection", inspection["id"])]


class TestCreateInspection:
    async def test_supervision_records_a_compliant_inspection(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        response = await registry.post(INSPECTIONS, json=payload(network, target), headers=auth(token))
        assert response.status_code == 201, response.text
        inspection = response.json()
        assert inspection["bureau_id"] == network["city_a"]["id"]
        assert inspection["bureau_path"] == network["city_a"]["path"]
        assert inspection["target_type"] == "enterprise" and inspection["target_id"] == target.id
        assert inspection["target_name"] == target.name
        assert inspection["inspected_on"] == "2008-09-12"
        assert inspection["officer_ids"] == sorted(
            [network["officers"]["a1"]["id"], network["officers"]["a2"]["id"]]
        )
        assert inspection["result"] == "compliant" and inspection["referral"] is None
        assert inspection["version"] == 1
        assert response.headers["location"] == f"{INSPECTIONS}/{inspection['id']}"
        assert response.headers["etag"] == '"1"'
        assert await actions(registry, inspection) == ["inspection.created"]
        assert await inspections_of(registry, "enterprise", target.id) == 1

    @pytest.mark.parametrize("kind", ["body", "auditor", "enterprise", "certificate", "product"])
    async def test_every_kind_of_target(self, registry, token_for, network, kind):
        chain = await chain_of(registry, network["unit"])
        obj = chain[kind]
        inspection = await record(
            registry,
            writer(token_for, network["city_a"]),
            payload(network, obj, target_type=kind),
        )
        expected = obj.number if kind == "certificate" else obj.name
        assert inspection["target_type"] == kind and inspection["target_name"] == expected

    async def test_a_target_kept_by_another_province_may_be_inspected(self, registry, token_for, network):
        # The certified subjects are public; the inspection belongs to the inspecting bureau.
        foreign = (await chain_of(registry, network["other"]))["product"]
        inspection = await record(
            registry, writer(token_for, network["city_a"]), payload(network, foreign, target_type="product")
        )
        assert inspection["bureau_id"] == network["city_a"]["id"]

    async def test_an_administrator_records_for_a_bureau_below(self, registry, token_for, network, target):
        token = writer(token_for, network["unit"], role="admin")
        officers = [network["officers"]["county"]["id"], network["officers"]["a1"]["id"]]
        body = payload(network, target, bureau_id=network["city_a"]["id"], officer_ids=officers)
        inspection = await record(registry, token, body)
        assert inspection["bureau_id"] == network["city_a"]["id"]
        assert inspection["recorded_by"] != ""

    async def test_inspected_today(self, registry, token_for, network, target):
        body = payload(network, target, inspected_on=str(today()))
        inspection = await record(registry, writer(token_for, network["city_a"]), body)
        assert inspection["inspected_on"] == str(today())

    async def test_an_inspecting_bureau_out_of_scope_reads_as_missing(
        self, registry, token_for, network, target
    ):
        token = writer(token_for, network["city_a"])
        outside = await registry.post(
            INSPECTIONS, json=payload(network, target, bureau_id=network["city_b"]["id"]), headers=auth(token)
        )
        missing = await registry.post(
            INSPECTIONS, json=payload(network, target, bureau_id=2**53 - 1), headers=auth(token)
        )
        problem_of(outside, 404, "not-found")
        problem_of(missing, 404, "not-found")
        assert outside.json()["detail"].replace(str(network["city_b"]["id"]), "<id>") == missing.json()[
            "detail"
        ].replace(str(2**53 - 1), "<id>")
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_an_unknown_target_is_a_field_error(self, registry, token_for, network):
        response = await registry.post(
            INSPECTIONS,
            json=payload(
                network, network["chain"]["enterprise"], target_type="certificate", target_id=2**53 - 1
            ),
            headers=auth(writer(token_for, network["city_a"])),
        )
        problem = problem_of(response, 422, "validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [("body.target_id", "target_not_found")]
        assert await inspections_of(registry, "certificate", 2**53 - 1) == 0
        assert (
            await audit_entries(registry, "inspection", target_type="certificate", target_id=2**53 - 1) == []
        )

    async def test_the_id_of_another_kind_of_target_is_not_found(self, registry, token_for, network):
        # A product's id names no auditor (ids of different tables are not interchangeable).
        chain = await chain_of(registry, network["unit"])
        missing_auditor_id = chain["product"].id + 10**9
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, chain["product"], target_type="auditor", target_id=missing_auditor_id),
            headers=auth(writer(token_for, network["city_a"])),
        )
        assert problem_of(response, 422, "validation-error")["errors"][0]["type"] == "target_not_found"

    async def test_a_merged_enterprise_is_refused(self, registry, token_for, network, target):
        (merged,) = await store(
            registry,
            Enterprise(
                name=unique("旧名称公司"),
                org_code=None,
                status="merged",
                merged_into_id=target.id,
                bureau_id=network["unit"]["id"],
                bureau_path=network["unit"]["path"],
            ),
        )
        response = await registry.post(
            INSPECTIONS, json=payload(network, merged), headers=auth(writer(token_for, network["city_a"]))
        )
        assert problem_of(response, 409, "target-merged")["merged_into_id"] == target.id
        assert await inspections_of(registry, "enterprise", merged.id) == 0

    @pytest.mark.parametrize("officers", [["a1"], ["a1", "a1"], []])
    async def test_fewer_than_two_officers(self, registry, token_for, network, target, officers):
        ids = [network["officers"][key]["id"] for key in officers]
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target, officer_ids=ids),
            headers=auth(writer(token_for, network["city_a"])),
        )
        problem_of(response, 409, "too-few-officers")
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_an_unknown_officer_is_a_field_error(self, registry, token_for, network, target):
        ids = [network["officers"]["a1"]["id"], 2**53 - 1]
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target, officer_ids=ids),
            headers=auth(writer(token_for, network["city_a"])),
        )
        problem = problem_of(response, 422, "validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
            ("body.officer_ids.1", "officer_not_found")
        ]
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_an_officer_out_of_scope_reads_as_unknown(self, registry, token_for, network, target):
        ids = [network["officers"]["other"]["id"], network["officers"]["a1"]["id"]]
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target, officer_ids=ids),
            headers=auth(writer(token_for, network["city_a"])),
        )
        problem = problem_of(response, 422, "validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
            ("body.officer_ids.0", "officer_not_found")
        ]
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_an_inactive_officer_is_refused(self, registry, token_for, network, target):
        national = token_for()
        retired = await create_officer(
            registry, national, network["city_a"], body="supervision", credential=False
        )
        deactivated = await registry.patch(
            f"{OFFICERS}/{retired['id']}",
            json={"active": False},
            headers={**auth(national), "If-Match": '"1"'},
        )
        assert deactivated.status_code == 200, deactivated.text
        ids = [network["officers"]["a1"]["id"], retired["id"]]
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target, officer_ids=ids),
            headers=auth(writer(token_for, network["city_a"])),
        )
        problem_of(response, 409, "officer-inactive")
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_an_officer_of_another_bureau_in_scope_is_refused(
        self, registry, token_for, network, target
    ):
        # The provincial principal sees city B's officer, but city A inspected.
        ids = [network["officers"]["a1"]["id"], network["officers"]["b"]["id"]]
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target, bureau_id=network["city_a"]["id"], officer_ids=ids),
            headers=auth(writer(token_for, network["unit"])),
        )
        problem_of(response, 409, "officer-outside-bureau")
        assert await inspections_of(registry, "enterprise", target.id) == 0

    @pytest.mark.parametrize(
        ("changes", "loc", "kind"),
        [
            ({"inspected_on": "tomorrow"}, "body.inspected_on", "date_in_future"),
            ({"inspected_on": "12/09/2008"}, "body.inspected_on", "date_type"),
            ({"inspected_on": 1221177600}, "body.inspected_on", "date_type"),
            ({"target_type": "case"}, "body.target_type", "enum"),
            ({"target_id": "5"}, "body.target_id", "value_error"),
            ({"target_id": 0}, "body.target_id", "greater_than_equal"),
            ({"officer_ids": list(range(1, 22))}, "body.officer_ids", "too_long"),
            ({"officer_ids": "1,2"}, "body.officer_ids", "list_type"),
            ({"findings": " x "}, "body.findings", "string_too_short"),
            ({"findings": "查" * 2001}, "body.findings", "string_too_long"),
            ({"result": "passed"}, "body.result", "enum"),
            ({"referral": {"state": "delivered"}}, "body.referral", "extra_forbidden"),
        ],
    )
    async def test_malformed_payloads(self, registry, token_for, network, target, changes, loc, kind):
        if changes.get("inspected_on") == "tomorrow":
            changes = {"inspected_on": str(today() + timedelta(days=1))}
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target, **changes),
            headers=auth(writer(token_for, network["city_a"])),
        )
        problem = problem_of(response, 422, "validation-error")
        assert {(e["loc"], e["type"]) for e in problem["errors"]} == {(loc, kind)}
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_missing_fields(self, registry, token_for, network):
        response = await registry.post(
            INSPECTIONS, json={}, headers=auth(writer(token_for, network["city_a"]))
        )
        problem = problem_of(response, 422, "validation-error")
        assert {e["loc"] for e in problem["errors"]} == {
            "body.target_type",
            "body.target_id",
            "body.inspected_on",
            "body.officer_ids",
            "body.findings",
            "body.result",
        }

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head", "system"])
    async def test_roles_that_do_not_inspect(self, registry, token_for, network, target, role):
        response = await registry.post(
            INSPECTIONS,
            json=payload(network, target),
            headers=auth(writer(token_for, network["city_a"], role=role)),
        )
        problem_of(response, 403, "role-required")
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_without_a_token(self, registry, network, target):
        response = await registry.post(INSPECTIONS, json=payload(network, target))
        problem_of(response, 401, "unauthorized")


class TestReadInspection:
    async def test_read_within_scope_with_etag(self, registry, token_for, network, target):
        created = await record(registry, writer(token_for, network["city_a"]), payload(network, target))
        for bureau in ("city_a", "unit"):
            token = token_for(network[bureau], roles=("enforcement",))
            response = await registry.get(f"{INSPECTIONS}/{created['id']}", headers=auth(token))
            assert response.status_code == 200, response.text
            assert response.headers["etag"] == '"1"'
            assert response.json() == created

    async def test_out_of_scope_reads_as_missing(self, registry, token_for, network, target):
        created = await record(registry, writer(token_for, network["city_a"]), payload(network, target))
        for bureau in ("city_b", "county_a1", "other"):
            token = writer(token_for, network[bureau])
            outside = await registry.get(f"{INSPECTIONS}/{created['id']}", headers=auth(token))
            missing = await registry.get(f"{INSPECTIONS}/{2**53 - 1}", headers=auth(token))
            problem_of(outside, 404, "not-found")
            problem_of(missing, 404, "not-found")
            assert outside.json()["detail"].replace(str(created["id"]), "<id>") == missing.json()[
                "detail"
            ].replace(str(2**53 - 1), "<id>")

    @pytest.mark.parametrize("bad", ["abc", "0", str(2**53)])
    async def test_bad_id(self, registry, token_for, bad):
        response = await registry.get(f"{INSPECTIONS}/{bad}", headers=auth(token_for()))
        problem_of(response, 422, "validation-error")


class TestListInspections:
    async def all_pages(self, registry, token: str, **params) -> list[dict]:
        items, cursor = [], None
        while True:
            query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
            response = await registry.get(INSPECTIONS, params=query, headers=auth(token))
            assert response.status_code == 200, response.text
            items += response.json()["items"]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return items

    async def test_filters_scope_and_pages(self, registry, token_for, network, target):
        a = writer(token_for, network["city_a"])
        first = await record(registry, a, payload(network, target, inspected_on="2008-03-01"))
        second = await record(registry, a, payload(network, target, inspected_on="2008-05-01"))
        third = await record(registry, a, payload(network, target, inspected_on="2008-07-01"))
        b_officers = [network["officers"]["b"]["id"], network["officers"]["a1"]["id"]]
        in_b = await record(
            registry,
            writer(token_for, network["unit"]),
            payload(network, target, bureau_id=network["unit"]["id"], officer_ids=b_officers),
        )
        by_target = {"target_type": "enterprise", "target_id": target.id}
        # City A sees its own three, oldest first; the unit above also the one it recorded.
        seen = await self.all_pages(registry, a, **by_target)
        assert [i["id"] for i in seen] == [first["id"], second["id"], third["id"]]
        seen = await self.all_pages(registry, token_for(network["unit"], roles=("legal",)), **by_target)
        assert [i["id"] for i in seen] == [first["id"], second["id"], third["id"], in_b["id"]]
        # Another city and another province see none of them.
        for bureau in ("city_b", "other"):
            assert await self.all_pages(registry, writer(token_for, network[bureau]), **by_target) == []
        window = await self.all_pages(
            registry, a, **by_target, inspected_from="2008-04-01", inspected_to="2008-07-01"
        )
        assert [i["id"] for i in window] == [second["id"], third["id"]]
        by_bureau = await self.all_pages(
            registry, token_for(network["unit"]), **by_target, bureau_id=network["unit"]["id"]
        )
        assert [i["id"] for i in by_bureau] == [in_b["id"]]

    async def test_filter_by_result_and_kind(self, registry, token_for, network):
        chain = await chain_of(registry, network["unit"])
        token = writer(token_for, network["city_a"])
        on_body = await record(registry, token, payload(network, chain["body"], target_type="body"))
        await record(registry, token, payload(network, chain["auditor"], target_type="auditor"))
        listed = await self.all_pages(registry, token, target_type="body", target_id=chain["body"].id)
        assert [i["id"] for i in listed] == [on_body["id"]]
        listed = await self.all_pages(
            registry, token, target_type="auditor", target_id=chain["auditor"].id, result="non_compliant"
        )
        assert listed == []

    async def test_target_id_needs_its_type(self, registry, token_for):
        response = await registry.get(INSPECTIONS, params={"target_id": 5}, headers=auth(token_for()))
        problem = problem_of(response, 422, "validation-error")
        assert problem["errors"][0]["loc"] == "query.target_type"

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"result": "passed"}, "query.result"),
            ({"inspected_from": "yesterday"}, "query.inspected_from"),
            ({"inspected_to": "0"}, "query.inspected_to"),
            ({"inspected_to": "1221177600"}, "query.inspected_to"),
            ({"limit": 501}, "query.limit"),
            ({"cursor": "WyJ4Il0"}, "query.cursor"),
        ],
    )
    async def test_bad_query(self, registry, token_for, params, loc):
        response = await registry.get(INSPECTIONS, params=params, headers=auth(token_for()))
        problem = problem_of(response, 422, "validation-error")
        assert problem["errors"][0]["loc"] == loc


class TestCorrectInspection:
    async def patch(self, registry, token: str, inspection: dict, body: dict, if_match: str | None = '"1"'):
        headers = {**auth(token), **({"If-Match": if_match} if if_match else {})}
        return await registry.patch(f"{INSPECTIONS}/{inspection['id']}", json=body, headers=headers)

    async def test_findings_corrected_with_if_match(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        created = await record(registry, token, payload(network, target))
        response = await self.patch(registry, token, created, {"findings": "  补充：企业已整改铭牌标识  "})
        assert response.status_code == 200, response.text
        corrected = response.json()
        assert corrected["findings"] == "补充：企业已整改铭牌标识"
        assert corrected["version"] == 2 and response.headers["etag"] == '"2"'
        assert corrected["result"] == "compliant" and corrected["referral"] is None
        assert await actions(registry, created) == ["inspection.created", "inspection.updated"]

    async def test_missing_if_match(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        created = await record(registry, token, payload(network, target))
        response = await self.patch(registry, token, created, {"findings": "改正后的结论"}, if_match=None)
        problem_of(response, 428, "precondition-required")
        await self.assert_unchanged(registry, token, created)

    async def test_stale_if_match(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        created = await record(registry, token, payload(network, target))
        assert (await self.patch(registry, token, created, {"findings": "第一次更正"})).status_code == 200
        response = await self.patch(registry, token, created, {"findings": "第二次更正"})
        assert problem_of(response, 412, "precondition-failed")["current_etag"] == '"2"'
        stored = (await registry.get(f"{INSPECTIONS}/{created['id']}", headers=auth(token))).json()
        assert stored["findings"] == "第一次更正" and stored["version"] == 2

    @pytest.mark.parametrize(
        ("body", "loc", "kind"),
        [
            ({}, "body", "empty_update"),
            ({"findings": None}, "body.findings", "string_type"),
            ({"result": None}, "body.result", "enum"),
            ({"result": "passed"}, "body.result", "enum"),
            ({"target_id": 1}, "body.target_id", "extra_forbidden"),
            ({"officer_ids": [1, 2]}, "body.officer_ids", "extra_forbidden"),
        ],
    )
    async def test_malformed_corrections(self, registry, token_for, network, target, body, loc, kind):
        token = writer(token_for, network["city_a"])
        created = await record(registry, token, payload(network, target))
        response = await self.patch(registry, token, created, body)
        problem = problem_of(response, 422, "validation-error")
        assert {(e["loc"], e["type"]) for e in problem["errors"]} == {(loc, kind)}
        await self.assert_unchanged(registry, token, created)

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_roles_that_do_not_inspect(self, registry, token_for, network, target, role):
        created = await record(registry, writer(token_for, network["city_a"]), payload(network, target))
        response = await self.patch(
            registry, writer(token_for, network["city_a"], role=role), created, {"findings": "更正"}
        )
        problem_of(response, 403, "role-required")
        await self.assert_unchanged(registry, token_for(), created)

    async def test_out_of_scope_reads_as_missing(self, registry, token_for, network, target):
        created = await record(registry, writer(token_for, network["city_a"]), payload(network, target))
        token = writer(token_for, network["city_b"])
        outside = await self.patch(registry, token, created, {"findings": "越权更正"})
        missing = await self.patch(registry, token, {"id": 2**53 - 1}, {"findings": "越权更正"})
        problem_of(outside, 404, "not-found")
        problem_of(missing, 404, "not-found")
        await self.assert_unchanged(registry, token_for(), created)

    @staticmethod
    async def assert_unchanged(registry, token: str, created: dict) -> None:
        stored = await registry.get(f"{INSPECTIONS}/{created['id']}", headers=auth(token))
        assert stored.json() == created


class TestReferral:
    """A non-compliant inspection is referred to the enforcement body through the outbox."""

    async def test_a_non_compliant_inspection_is_referred(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        body = payload(network, target, result="non_compliant", findings="获证产品与型式试验样品不一致")
        inspection = await record(registry, token, body)
        referral = inspection["referral"]
        assert referral["state"] == "pending"
        (event,) = await referrals_about(registry, target)
        assert str(event["id"]) == referral["event_id"]
        assert event["aggregate_type"] == "inspection" and event["aggregate_id"] == str(inspection["id"])
        assert event["aggregate_version"] == 1
        assert (event["bureau_id"], event["bureau_path"]) == (
            network["city_a"]["id"],
            network["city_a"]["path"],
        )
        assert event["payload"] == {
            "inspection_id": inspection["id"],
            "target_type": "enterprise",
            "target_id": target.id,
            "target_name": target.name,
            "result": "non_compliant",
            "findings": "获证产品与型式试验样品不一致",
            "inspected_on": "2008-09-12",
            "bureau_id": network["city_a"]["id"],
        }

    async def test_the_referral_waits_in_the_outbox_list(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        inspection = await record(registry, token, payload(network, target, result="non_compliant"))
        response = await registry.get(
            EVENTS,
            params={"type": REFERRED, "aggregate_type": "inspection", "aggregate_id": str(inspection["id"])},
            headers=auth(token),
        )
        assert response.status_code == 200, response.text
        (listed,) = response.json()["items"]
        assert listed["id"] == inspection["referral"]["event_id"] and listed["state"] == "pending"
        pending = await registry.get(
            EVENTS, params={"state": "pending", "aggregate_id": str(inspection["id"])}, headers=auth(token)
        )
        assert [e["id"] for e in pending.json()["items"]] == [listed["id"]]

    async def test_the_read_model_follows_the_delivery(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        inspection = await record(registry, token, payload(network, target, result="non_compliant"))
        event_id = inspection["referral"]["event_id"]
        url = f"{INSPECTIONS}/{inspection['id']}"
        await mark_outbox(registry, event_id, enqueued_at=datetime.now(UTC), attempts=1)
        assert (await registry.get(url, headers=auth(token))).json()["referral"] == {
            "event_id": event_id,
            "state": "enqueued",
        }
        await mark_outbox(registry, event_id, delivered_at=datetime.now(UTC))
        listed = await registry.get(
            INSPECTIONS, params={"target_type": "enterprise", "target_id": target.id}, headers=auth(token)
        )
        assert [i["referral"]["state"] for i in listed.json()["items"]] == ["delivered"]

    async def test_a_compliant_inspection_is_not_referred(self, registry, token_for, network, target):
        inspection = await record(registry, writer(token_for, network["city_a"]), payload(network, target))
        assert inspection["referral"] is None
        assert await referrals_about(registry, target) == []

    async def test_a_refused_inspection_refers_nothing(self, registry, token_for, network, target):
        body = payload(network, target, result="non_compliant", officer_ids=[network["officers"]["a1"]["id"]])
        response = await registry.post(
            INSPECTIONS, json=body, headers=auth(writer(token_for, network["city_a"]))
        )
        problem_of(response, 409, "too-few-officers")
        assert await referrals_about(registry, target) == []
        assert await inspections_of(registry, "enterprise", target.id) == 0

    async def test_a_correction_to_non_compliant_refers_it(self, registry, token_for, network, target):
        token = writer(token_for, network["city_a"])
        created = await record(registry, token, payload(network, target))
        response = await registry.patch(
            f"{INSPECTIONS}/{created['id']}",
            json={"result": "non_compliant", "findings": "复核发现标志使用不规范"},
            headers={**auth(token), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        corrected = response.json()
        assert corrected["result"] == "non_compliant" and corrected["version"] == 2
        (event,) = await referrals_about(registry, target)
        assert corrected["referral"] == {"event_id": str(event["id"]), "state": "pending"}
        assert event["aggregate_version"] == 2
        assert event["payload"]["findings"] == "复核发现标志使用不规范"

    @pytest.mark.parametrize("correction", [{"findings": "补充说明"}, {"result": "compliant"}])
    async def test_a_referred_inspection_is_not_corrected(
        self, registry, token_for, network, target, correction
    ):
        token = writer(token_for, network["city_a"])
        created = await record(registry, token, payload(network, target, result="non_compliant"))
        response = await registry.patch(
            f"{INSPECTIONS}/{created['id']}", json=correction, headers={**auth(token), "If-Match": '"1"'}
        )
        problem_of(response, 409, "inspection-referred")
        stored = await registry.get(f"{INSPECTIONS}/{created['id']}", headers=auth(token))
        assert stored.json() == created
        assert len(await referrals_about(registry, target)) == 1
        assert await actions(registry, created) == ["inspection.created"]

    async def test_referrals_are_read_only_within_scope(self, registry, token_for, network, target):
        inspection = await record(
            registry, writer(token_for, network["city_a"]), payload(network, target, result="non_compliant")
        )
        response = await registry.get(
            EVENTS,
            params={"type": REFERRED, "aggregate_id": str(inspection["id"])},
            headers=auth(writer(token_for, network["city_b"])),
        )
        assert response.status_code == 200
        assert response.json()["items"] == []

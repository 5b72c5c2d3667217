"""Certified enterprises (获证企业): one record per enterprise under its credit code or its older
organisation code, lookups by either, and merges that carry every reference along."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.registry.certification.identifiers import org_code_of
from services.registry.models import Certificate
from tests.conftest import auth
from tests.factories import (
    affiliate,
    audit_entries,
    create_auditor,
    create_certification_body,
    create_enterprise,
    create_product,
    credit_code,
    fetch_row,
    insert_certificate,
    legacy_enterprise,
    org_code,
    record_activity,
    same_problem,
    two_provinces,
    unique,
    wrong_check_character,
)

ENTERPRISES = "/api/v1/registry/enterprises"


@pytest.fixture(scope="module")
async def places(registry, token_for):
    return await two_provinces(registry, token_for())


@pytest.fixture
def writer(token_for, places):
    return token_for(places["home"], roles=("supervision",))


async def lookup(registry, token: str, **params) -> list[dict]:
    response = await registry.get(ENTERPRISES, params=params, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def read(registry, token: str, enterprise_id: int) -> dict:
    response = await registry.get(f"{ENTERPRISES}/{enterprise_id}", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


async def legacy_record(registry, places, **values) -> dict:
    return await legacy_enterprise(registry, places["home"], **values)


class TestCreateEnterprise:
    async def test_an_enterprise_is_recorded_under_its_credit_code(self, registry, writer, places):
        code = credit_code(division_code="330106")
        response = await registry.post(
            ENTERPRISES,
            json={"credit_code": code.lower(), "name": "  杭州示例有限公司  ", "division_code": "330106"},
            headers=auth(writer),
        )
        assert response.status_code == 201, response.text
        enterprise = response.json()
        assert (enterprise["credit_code"], enterprise["org_code"]) == (code, org_code_of(code))
        assert (enterprise["name"], enterprise["status"], enterprise["merged_into_id"]) == (
            "杭州示例有限公司",
            "active",
            None,
        )
        assert enterprise["bureau_path"] == places["home"]["path"]
        assert response.headers["location"] == f"{ENTERPRISES}/{enterprise['id']}"
        assert response.headers["etag"] == '"1"'
        entries = await audit_entries(registry, "enterprise", enterprise["id"])
        assert [e["action"] for e in entries] == ["enterprise.created"]

    async def test_an_older_record_is_kept_under_its_organisation_code(self, registry, writer):
        code = org_code()
        enterprise = await create_enterprise(
            registry, writer, credit_code=None, org_code=f"{code[:8]}-{code[8]}"
        )
        assert (enterprise["credit_code"], enterprise["org_code"]) == (None, code)

    async def test_both_codes_are_kept_when_they_agree(self, registry, writer):
        code = credit_code()
        enterprise = await create_enterprise(registry, writer, credit_code=code, org_code=org_code_of(code))
        assert (enterprise["credit_code"], enterprise["org_code"]) == (code, org_code_of(code))

    async def test_codes_that_disagree_are_refused(self, registry, writer):
        marker = unique("不一致")
        response = await registry.post(
            ENTERPRISES,
            json={"credit_code": credit_code(), "org_code": org_code(), "name": marker},
            headers=auth(writer),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.org_code"
        assert await lookup(registry, writer, q=marker) == []

    async def test_an_enterprise_needs_a_code(self, registry, writer):
        marker = unique("无代码")
        response = await registry.post(ENTERPRISES, json={"name": marker}, headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.credit_code"
        assert await lookup(registry, writer, q=marker) == []

    @pytest.mark.parametrize(
        "code",
        [
            pytest.param(wrong_check_character(credit_code()), id="check-character"),
            pytest.param(credit_code()[:17], id="length"),
            pytest.param("91330100MA27XK1CI9", id="letter-not-in-the-alphabet"),
        ],
    )
    async def test_a_wrong_credit_code_is_refused_naming_the_rule(self, registry, writer, code):
        marker = unique("错误代码")
        response = await registry.post(
            ENTERPRISES, json={"credit_code": code, "name": marker}, headers=auth(writer)
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        [error] = problem["errors"]
        assert error["loc"] == "body.credit_code"
        assert "is not a valid unified social credit code" in error["message"]
        assert await lookup(registry, writer, q=marker) == []
        assert await audit_entries(registry, "enterprise", name=marker) == []

    async def test_a_wrong_organisation_code_is_refused_naming_the_rule(self, registry, writer):
        marker = unique("错误机构代码")
        response = await registry.post(
            ENTERPRISES,
            json={"org_code": wrong_check_character(org_code()), "name": marker},
            headers=auth(writer),
        )
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert error["loc"] == "body.org_code"
        assert "check character" in error["message"]
        assert await lookup(registry, writer, q=marker) == []

    async def test_the_same_enterprise_under_its_new_code_is_refused(self, registry, writer):
        old = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        new_code = credit_code(org=old["org_code"])
        response = await registry.post(
            ENTERPRISES, json={"credit_code": new_code, "name": unique("新名")}, headers=auth(writer)
        )
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/enterprise-exists"
        assert problem["existing_id"] == old["id"]
        assert await lookup(registry, writer, credit_code=new_code) == []
        assert [e["id"] for e in await lookup(registry, writer, org_code=old["org_code"])] == [old["id"]]

    async def test_the_same_enterprise_under_its_old_code_is_refused(self, registry, writer):
        new = await create_enterprise(registry, writer)
        response = await registry.post(
            ENTERPRISES,
            json={"org_code": org_code_of(new["credit_code"]), "name": unique("旧名")},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["existing_id"]) == (
            "/problems/enterprise-exists",
            new["id"],
        )
        assert [e["id"] for e in await lookup(registry, writer, org_code=new["org_code"])] == [new["id"]]

    async def test_a_credit_code_recorded_already_is_refused(self, registry, writer):
        first = await create_enterprise(registry, writer)
        response = await registry.post(
            ENTERPRISES,
            json={"credit_code": first["credit_code"], "name": unique("重复")},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["existing_id"]) == (
            "/problems/enterprise-exists",
            first["id"],
        )

    async def test_registering_under_both_codes_at_once_writes_one_record(self, registry, writer):
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            for _ in range(2):
                org = org_code()
                payloads = [{"org_code": org}, {"credit_code": credit_code(org=org)}] * 3
                responses = await asyncio.gather(
                    *(
                        client.post(ENTERPRISES, json={**p, "name": unique("并发")}, headers=auth(writer))
                        for p in payloads
                    )
                )
                statuses = sorted(r.status_code for r in responses)
                assert statuses == [201] + [409] * 5, [r.text for r in responses]
                assert {r.json()["type"] for r in responses if r.status_code == 409} == {
                    "/problems/enterprise-exists"
                }
                assert len(await lookup(registry, writer, org_code=org)) == 1

    async def test_an_unknown_division_is_refused(self, registry, writer):
        marker = unique("区划")
        response = await registry.post(
            ENTERPRISES,
            json={"credit_code": credit_code(), "name": marker, "division_code": "339999"},
            headers=auth(writer),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.division_code"
        assert await lookup(registry, writer, q=marker) == []

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_other_roles_are_refused(self, registry, token_for, places, role):
        code = credit_code()
        response = await registry.post(
            ENTERPRISES,
            json={"credit_code": code, "name": unique("角色")},
            headers=auth(token_for(places["home"], roles=(role,))),
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await lookup(registry, token_for(), credit_code=code) == []

    async def test_a_bureau_outside_scope_is_not_found(self, registry, writer, places):
        code = credit_code()
        response = await registry.post(
            ENTERPRISES,
            json={"credit_code": code, "name": unique("越界"), "bureau_id": places["away"]["id"]},
            headers=auth(writer),
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await lookup(registry, writer, credit_code=code) == []


class TestReadAndLookups:
    async def test_any_principal_reads_an_enterprise_with_its_counts(
        self, registry, writer, token_for, places
    ):
        enterprise = await create_enterprise(registry, writer)
        await create_product(registry, writer, enterprise)
        body = await create_certification_body(registry, writer)
        await insert_certificate(registry, body, enterprise)
        response = await registry.get(
            f"{ENTERPRISES}/{enterprise['id']}",
            headers=auth(token_for(places["away"], roles=("enforcement",))),
        )
        assert response.status_code == 200
        read_back = response.json()
        assert (read_back["certificate_count"], read_back["product_count"]) == (1, 1)
        assert response.headers["etag"] == '"1"'

    async def test_a_missing_enterprise_is_not_found(self, registry, token_for):
        response = await registry.get(f"{ENTERPRISES}/{2**52}", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    async def test_an_organisation_code_finds_records_under_either_code(self, registry, writer, places):
        new = await create_enterprise(registry, writer)
        older = await legacy_record(registry, places, org_code=org_code())
        assert [e["id"] for e in await lookup(registry, writer, org_code=new["org_code"])] == [new["id"]]
        assert [e["id"] for e in await lookup(registry, writer, org_code=older["org_code"])] == [older["id"]]
        assert [e["id"] for e in await lookup(registry, writer, credit_code=new["credit_code"].lower())] == [
            new["id"]
        ]

    async def test_a_legacy_credit_record_is_found_by_its_embedded_code(self, registry, writer, places):
        legacy = await legacy_record(registry, places, credit_code=credit_code())
        assert legacy["org_code"] is None
        found = await lookup(registry, writer, org_code=org_code_of(legacy["credit_code"]))
        assert [e["id"] for e in found] == [legacy["id"]]

    @pytest.mark.parametrize(
        "params",
        [
            {"credit_code": "91330100MA27XK1C60"},
            {"org_code": "12345678-0"},
            {"division_code": "33"},
            {"q": ""},
        ],
    )
    async def test_malformed_lookups_are_refused(self, registry, token_for, params):
        response = await registry.get(ENTERPRISES, params=params, headers=auth(token_for()))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"

    async def test_a_province_or_city_code_finds_everything_inside(self, registry, writer, token_for):
        marker = unique("区划查找")
        west_lake = await create_enterprise(registry, writer, name=f"{marker}甲", division_code="330106")
        hangzhou = await create_enterprise(registry, writer, name=f"{marker}乙", division_code="330100")
        ningbo = await create_enterprise(registry, writer, name=f"{marker}丙", division_code="330203")
        jinan = await create_enterprise(registry, writer, name=f"{marker}丁", division_code="370100")

        async def ids(division_code: str) -> list[int]:
            found = await lookup(registry, token_for(), q=marker, division_code=division_code)
            return [e["id"] for e in found]

        assert await ids("330000") == [west_lake["id"], hangzhou["id"], ningbo["id"]]
        assert await ids("330100") == [west_lake["id"], hangzhou["id"]]
        assert await ids("330106") == [west_lake["id"]]
        assert await ids("370000") == [jinan["id"]]
        assert await ids("440000") == []

    async def test_pages_follow_the_cursor(self, registry, writer, token_for):
        marker = unique("分页企业")
        made = [(await create_enterprise(registry, writer, name=f"{marker}{i}"))["id"] for i in range(3)]
        first = (
            await registry.get(ENTERPRISES, params={"q": marker, "limit": 2}, headers=auth(token_for()))
        ).json()
        second = (
            await registry.get(
                ENTERPRISES,
                params={"q": marker, "limit": 2, "cursor": first["next_cursor"]},
                headers=auth(token_for()),
            )
        ).json()
        assert [e["id"] for e in first["items"] + second["items"]] == made
        assert second["next_cursor"] is None


class TestUpdateEnterprise:
    async def test_an_older_record_is_upgraded_with_its_credit_code(self, registry, writer):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        code = credit_code(org=older["org_code"])
        response = await registry.patch(
            f"{ENTERPRISES}/{older['id']}",
            json={"credit_code": code},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        upgraded = response.json()
        assert (upgraded["credit_code"], upgraded["org_code"], upgraded["version"]) == (
            code,
            older["org_code"],
            2,
        )
        assert response.headers["etag"] == '"2"'
        entries = await audit_entries(registry, "enterprise", older["id"])
        assert [(e["action"], e["data"].get("credit_code")) for e in entries] == [
            ("enterprise.created", None),
            ("enterprise.updated", code),
        ]
        assert [e["id"] for e in await lookup(registry, writer, credit_code=code)] == [older["id"]]

    async def test_a_credit_code_of_another_organisation_is_refused(self, registry, writer):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        response = await registry.patch(
            f"{ENTERPRISES}/{older['id']}",
            json={"credit_code": credit_code()},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/org-code-mismatch"
        assert await read(registry, writer, older["id"]) == {
            **older,
            "certificate_count": 0,
            "product_count": 0,
        }

    async def test_a_recorded_credit_code_does_not_change(self, registry, writer):
        enterprise = await create_enterprise(registry, writer)
        response = await registry.patch(
            f"{ENTERPRISES}/{enterprise['id']}",
            json={"credit_code": credit_code()},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/credit-code-fixed"

    async def test_an_upgrade_to_a_code_another_record_holds_is_refused(self, registry, writer, places):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        code = credit_code(org=older["org_code"])
        legacy = await legacy_record(registry, places, credit_code=code)
        response = await registry.patch(
            f"{ENTERPRISES}/{older['id']}",
            json={"credit_code": code},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["existing_id"]) == (
            "/problems/enterprise-exists",
            legacy["id"],
        )
        assert (await read(registry, writer, older["id"]))["credit_code"] is None

    async def test_name_division_and_address_change(self, registry, writer):
        enterprise = await create_enterprise(registry, writer)
        response = await registry.patch(
            f"{ENTERPRISES}/{enterprise['id']}",
            json={"name": "更名后有限公司", "division_code": None, "address": "新地址 8 号"},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["name"], changed["division_code"], changed["address"]) == (
            "更名后有限公司",
            None,
            "新地址 8 号",
        )

    async def test_a_stale_if_match_is_refused(self, registry, writer):
        enterprise = await create_enterprise(registry, writer)
        url = f"{ENTERPRISES}/{enterprise['id']}"
        assert (
            await registry.patch(url, json={"address": "一"}, headers={**auth(writer), "If-Match": '"1"'})
        ).status_code == 200
        response = await registry.patch(
            url, json={"address": "二"}, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        assert (await read(registry, writer, enterprise["id"]))["address"] == "一"

    async def test_a_missing_if_match_is_refused(self, registry, writer):
        enterprise = await create_enterprise(registry, writer)
        response = await registry.patch(
            f"{ENTERPRISES}/{enterprise['id']}", json={"address": "二"}, headers=auth(writer)
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert (await read(registry, writer, enterprise["id"]))["version"] == 1

    async def test_an_enterprise_outside_scope_is_not_found_like_a_missing_one(
        self, registry, writer, token_for, places
    ):
        enterprise = await create_enterprise(registry, writer)
        headers = {**auth(token_for(places["away"], roles=("supervision",))), "If-Match": '"1"'}
        outside = await registry.patch(
            f"{ENTERPRISES}/{enterprise['id']}", json={"address": "越界"}, headers=headers
        )
        missing = await registry.patch(f"{ENTERPRISES}/{2**52}", json={"address": "越界"}, headers=headers)
        assert outside.status_code == missing.status_code == 404
        assert same_problem(outside.json(), enterprise["id"]) == same_problem(missing.json(), 2**52)
        assert (await read(registry, writer, enterprise["id"]))["address"] == enterprise["address"]

    async def test_an_enforcement_officer_is_refused(self, registry, writer, token_for, places):
        enterprise = await create_enterprise(registry, writer)
        response = await registry.patch(
            f"{ENTERPRISES}/{enterprise['id']}",
            json={"address": "改"},
            headers={**auth(token_for(places["home"], roles=("enforcement",))), "If-Match": '"1"'},
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"

    @pytest.mark.parametrize(
        "change",
        [{"credit_code": None}, {"credit_code": "91330100MA27XK1C60"}, {"status": "merged"}, {"name": "x"}],
    )
    async def test_malformed_changes_are_refused(self, registry, writer, change):
        enterprise = await create_enterprise(registry, writer)
        response = await registry.patch(
            f"{ENTERPRISES}/{enterprise['id']}", json=change, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"


class TestMerge:
    async def merge(self, registry, token: str, survivor: dict, duplicate: dict) -> httpx.Response:
        return await registry.post(
            f"{ENTERPRISES}/{survivor['id']}/merge",
            json={"duplicate_id": duplicate["id"]},
            headers=auth(token),
        )

    async def test_a_merge_folds_the_old_record_into_the_new_and_moves_every_reference(
        self, registry, writer, places
    ):
        # The enterprise was recorded under its organisation code, with a product, a
        # certificate and an audit; an old import recorded it again under its credit code.
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        body = await create_certification_body(registry, writer)
        auditor = await create_auditor(registry, writer)
        await affiliate(registry, writer, auditor, body)
        product = await create_product(registry, writer, older)
        certificate = await insert_certificate(registry, body, older)
        activity = await record_activity(
            registry, writer, body, older, certificate_id=certificate["id"], auditor_ids=[auditor["id"]]
        )
        newer = await legacy_record(registry, places, credit_code=credit_code(org=older["org_code"]))

        response = await self.merge(registry, writer, newer, older)
        assert response.status_code == 200, response.text
        survivor = response.json()
        assert (survivor["id"], survivor["status"], survivor["version"]) == (newer["id"], "active", 2)
        assert (survivor["certificate_count"], survivor["product_count"]) == (1, 1)
        assert response.headers["etag"] == '"2"'
        merged_entries = await audit_entries(registry, "enterprise", older["id"])
        assert [(e["action"], e["data"].get("merged_into_id")) for e in merged_entries] == [
            ("enterprise.created", None),
            ("enterprise.merged", newer["id"]),
        ]
        absorbed_entries = await audit_entries(registry, "enterprise", newer["id"])
        assert [(e["action"], e["data"]["duplicate_id"]) for e in absorbed_entries] == [
            ("enterprise.absorbed", older["id"])
        ]

        merged = await read(registry, writer, older["id"])
        assert (merged["status"], merged["merged_into_id"], merged["version"]) == ("merged", newer["id"], 2)
        moved_product = (
            await registry.get(f"/api/v1/registry/products/{product['id']}", headers=auth(writer))
        ).json()
        assert (moved_product["holder_id"], moved_product["version"]) == (newer["id"], 2)
        moved_certificate = await fetch_row(registry, Certificate, certificate["id"])
        assert (moved_certificate["holder_id"], moved_certificate["version"]) == (
            newer["id"],
            certificate["version"] + 1,
        )
        moved_activity = (
            await registry.get(
                f"/api/v1/registry/certification-activities/{activity['id']}", headers=auth(writer)
            )
        ).json()
        assert moved_activity["holder_id"] == newer["id"]
        # Either code leads to the survivor: directly, or through the merged record.
        by_org = await lookup(registry, writer, org_code=older["org_code"])
        assert [(e["id"], e["merged_into_id"]) for e in by_org] == [
            (older["id"], newer["id"]),
            (newer["id"], None),
        ]

    async def test_the_merged_enterprise_is_not_registered_again(self, registry, writer, places):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await legacy_record(registry, places, credit_code=credit_code(org=older["org_code"]))
        assert (await self.merge(registry, writer, newer, older)).status_code == 200
        response = await registry.post(
            ENTERPRISES,
            json={
                "credit_code": credit_code(org=older["org_code"], division_code="330106"),
                "name": unique("再"),
            },
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["existing_id"]) == (
            "/problems/enterprise-exists",
            newer["id"],
        )

    async def test_a_merged_record_takes_no_products_and_no_changes(self, registry, writer, places):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await legacy_record(registry, places, credit_code=credit_code(org=older["org_code"]))
        await self.merge(registry, writer, newer, older)
        response = await registry.post(
            "/api/v1/registry/products",
            json={"holder_id": older["id"], "name": unique("产品"), "category_code": "0701", "model": "X1"},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["survivor_id"]) == (
            "/problems/enterprise-merged",
            newer["id"],
        )
        response = await registry.patch(
            f"{ENTERPRISES}/{older['id']}",
            json={"address": "改"},
            headers={**auth(writer), "If-Match": '"2"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/enterprise-merged"

    async def test_merging_twice_is_refused(self, registry, writer, places):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await legacy_record(registry, places, credit_code=credit_code(org=older["org_code"]))
        await self.merge(registry, writer, newer, older)
        other = await create_enterprise(registry, writer)
        response = await self.merge(registry, writer, other, older)
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["survivor_id"]) == (
            "/problems/enterprise-merged",
            newer["id"],
        )
        assert (await read(registry, writer, other["id"]))["version"] == 1

    async def test_records_merged_earlier_follow_to_the_last_survivor(self, registry, writer, places):
        first = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        middle = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        last = await create_enterprise(registry, writer)
        assert (await self.merge(registry, writer, middle, first)).status_code == 200
        assert (await self.merge(registry, writer, last, middle)).status_code == 200
        assert (await read(registry, writer, first["id"]))["merged_into_id"] == last["id"]

    async def test_two_credit_codes_are_two_enterprises(self, registry, writer):
        one, two = await create_enterprise(registry, writer), await create_enterprise(registry, writer)
        response = await self.merge(registry, writer, one, two)
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/enterprise-codes-differ"
        assert (await read(registry, writer, two["id"]))["status"] == "active"

    async def test_the_survivor_is_the_record_under_the_credit_code(self, registry, writer):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await create_enterprise(registry, writer)
        response = await self.merge(registry, writer, older, newer)
        assert response.status_code == 409
        problem = response.json()
        assert (problem["type"], problem["suggested_survivor_id"]) == (
            "/problems/merge-into-credit-code-record",
            newer["id"],
        )
        assert (await read(registry, writer, newer["id"]))["status"] == "active"

    async def test_a_record_is_not_merged_into_itself(self, registry, writer):
        enterprise = await create_enterprise(registry, writer)
        response = await self.merge(registry, writer, enterprise, enterprise)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.duplicate_id"

    async def test_a_duplicate_outside_scope_is_not_found_and_nothing_moves(
        self, registry, writer, token_for, places
    ):
        outsider = token_for(places["away"], roles=("supervision",))
        theirs = await create_enterprise(registry, outsider, credit_code=None, org_code=org_code())
        product = await create_product(registry, outsider, theirs)
        ours = await create_enterprise(registry, writer)
        response = await self.merge(registry, writer, ours, theirs)
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert (await read(registry, writer, theirs["id"]))["status"] == "active"
        moved = (
            await registry.get(f"/api/v1/registry/products/{product['id']}", headers=auth(writer))
        ).json()
        assert moved["holder_id"] == theirs["id"]

    async def test_an_enforcement_officer_is_refused(self, registry, writer, token_for, places):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        response = await self.merge(registry, token_for(places["home"], roles=("enforcement",)), newer, older)
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert (await read(registry, writer, older["id"]))["status"] == "active"

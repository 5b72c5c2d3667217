"""Certification bodies (认证机构): approval numbers and validity, scope of writes, roles, lists."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.common.auth import PrincipalKind
from services.registry.certification import rules
from services.registry.models import CertificationBody
from tests.conftest import auth
from tests.factories import (
    approval_number,
    audit_count,
    create_certification_body,
    credit_code,
    insert_row,
    same_problem,
    two_provinces,
    unique,
    wrong_check_character,
)

BODIES = "/api/v1/registry/certification-bodies"


@pytest.fixture(scope="module")
async def places(registry, token_for):
    return await two_provinces(registry, token_for())


@pytest.fixture
def writer(token_for, places):
    """A supervision officer of the module's home bureau."""
    return token_for(places["home"], roles=("supervision",))


async def bodies_numbered(registry, token: str, number: str) -> list[dict]:
    response = await registry.get(BODIES, params={"approval_number": number}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def body_payload(**extra) -> dict:
    return {
        "approval_number": approval_number(),
        "name": unique("认证有限公司"),
        "approved_on": "2024-03-01",
        "approved_schemes": ["qms", "ems"],
        **extra,
    }


class TestCreateBody:
    async def test_a_supervision_officer_records_a_body_kept_by_their_bureau(self, registry, writer, places):
        before = await audit_count(registry)
        payload = body_payload(
            credit_code=credit_code(),
            approved_schemes=["ccc", "qms", "ccc"],
            ccc_designations=["0901", "0902", "0901"],
        )
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["approval_number"] == payload["approval_number"]
        # Six years, the last day included: granted 2024-03-01, last day 2030-02-28.
        assert body["approval_expires_on"] == "2030-02-28"
        assert body["approved_schemes"] == ["ccc", "qms"]
        assert body["ccc_designations"] == ["0901", "0902"]
        assert body["status"] == "approved"
        assert body["approval_expired"] is False
        assert body["renewal_due"] is False
        assert (body["bureau_id"], body["bureau_path"]) == (places["home"]["id"], places["home"]["path"])
        assert response.headers["location"] == f"{BODIES}/{body['id']}"
        assert response.headers["etag"] == '"1"'
        assert await audit_count(registry) == before + 1

    async def test_the_approval_period_is_the_rules_data(self):
        assert (rules.BODY_APPROVAL_VALIDITY.value, rules.BODY_APPROVAL_VALIDITY.unit) == (6, "years")
        assert rules.approval_expiry(rules.today().replace(month=1, day=1)).year == rules.today().year + 5

    async def test_a_given_expiry_is_kept(self, registry, writer):
        body = await create_certification_body(registry, writer, approval_expires_on="2031-12-31")
        assert body["approval_expires_on"] == "2031-12-31"

    async def test_approval_number_is_normalised(self, registry, writer):
        number = approval_number()
        body = await create_certification_body(registry, writer, approval_number=f"  {number.lower()} ")
        assert body["approval_number"] == number

    async def test_a_national_officer_records_a_body_for_a_bureau_below(self, registry, token_for, places):
        body = await create_certification_body(
            registry, token_for(roles=("supervision",)), bureau_id=places["below"]["id"]
        )
        assert body["bureau_path"] == places["below"]["path"]

    @pytest.mark.parametrize("role", ["admin", "system"])
    async def test_administrators_and_provincial_systems_write(self, registry, token_for, places, role):
        kind = PrincipalKind.SYSTEM if role == "system" else PrincipalKind.OFFICER
        body = await create_certification_body(registry, token_for(places["home"], roles=(role,), kind=kind))
        assert body["bureau_id"] == places["home"]["id"]

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_other_roles_are_refused_and_nothing_is_written(self, registry, token_for, places, role):
        payload = body_payload()
        response = await registry.post(
            BODIES, json=payload, headers=auth(token_for(places["home"], roles=(role,)))
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await bodies_numbered(registry, token_for(), payload["approval_number"]) == []

    async def test_a_bureau_outside_scope_is_not_found(self, registry, writer, places):
        payload = body_payload(bureau_id=places["away"]["id"])
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    @pytest.mark.parametrize(
        "number",
        [
            "CNCA-R-02-001",
            "CNCA-X-2002-001",
            "CNCA-R-1999-001",
            "CNCA-R-2002-0001",
            "R-2002-001",
            "CNCA-R-٢٠٠٢-٠٠١",  # digits of another script
        ],
    )
    async def test_a_malformed_approval_number_names_the_rule(self, registry, writer, number):
        before = await audit_count(registry)
        response = await registry.post(
            BODIES, json=body_payload(approval_number=number), headers=auth(writer)
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        [error] = problem["errors"]
        assert error["loc"] == "body.approval_number"
        assert "CNCA-R-YYYY-NNN" in error["message"]
        assert await audit_count(registry) == before

    async def test_a_wrong_credit_code_names_the_rule(self, registry, writer):
        payload = body_payload(credit_code=wrong_check_character(credit_code()))
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert error["loc"] == "body.credit_code"
        assert "unified social credit code" in error["message"]
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    async def test_a_taken_approval_number_is_refused(self, registry, writer):
        first = await create_certification_body(registry, writer)
        payload = body_payload(approval_number=first["approval_number"])
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/approval-number-taken"
        assert problem["existing_id"] == first["id"]
        assert [b["id"] for b in await bodies_numbered(registry, writer, first["approval_number"])] == [
            first["id"]
        ]

    async def test_a_taken_credit_code_is_refused(self, registry, writer):
        first = await create_certification_body(registry, writer, credit_code=credit_code())
        payload = body_payload(credit_code=first["credit_code"])
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/body-credit-code-taken"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    async def test_a_taken_ccc_body_code_is_refused(self, registry, writer):
        first = None
        for code in (f"{n:02d}" for n in range(10, 100)):
            response = await registry.post(
                BODIES, json=body_payload(approved_schemes=["ccc"], ccc_body_code=code), headers=auth(writer)
            )
            if response.status_code == 201:
                first = response.json()
                break
        assert first is not None
        payload = body_payload(approved_schemes=["ccc"], ccc_body_code=first["ccc_body_code"])
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/ccc-body-code-taken"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    async def test_an_expiry_before_the_grant_is_refused(self, registry, writer):
        payload = body_payload(approved_on="2024-03-01", approval_expires_on="2024-02-01")
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.approval_expires_on"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    @pytest.mark.parametrize("field", [{"ccc_designations": ["0901"]}, {"ccc_body_code": "98"}])
    async def test_ccc_designations_need_the_ccc_scheme(self, registry, writer, field):
        payload = body_payload(approved_schemes=["qms"], **field)
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == f"body.{next(iter(field))}"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    async def test_an_approved_body_whose_approval_has_run_out_is_refused(self, registry, writer):
        payload = body_payload(approved_on="2010-01-01")
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/approval-expired"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []

    async def test_an_expired_body_is_recorded_as_expired(self, registry, writer):
        body = await create_certification_body(registry, writer, approved_on="2010-01-01", status="expired")
        assert body["approval_expires_on"] == "2015-12-31"
        assert body["approval_expired"] is True
        assert body["renewal_due"] is False

    @pytest.mark.parametrize(
        "change",
        [
            {"approved_schemes": []},
            {"approved_schemes": ["iso9001"]},
            {"ccc_designations": ["901"]},
            {"ccc_designations": ["٠٩٠١"]},
            {"ccc_body_code": "1"},
            {"approved_on": "2024-02-30"},
            {"approved_on": 1709251200},
            {"approved_on": "2300-01-01"},
            {"status": "active"},
            {"unknown": 1},
            {"bureau_id": True},
        ],
    )
    async def test_malformed_fields_are_refused(self, registry, writer, change):
        payload = {**body_payload(approved_schemes=["ccc"]), **change}
        response = await registry.post(BODIES, json=payload, headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"
        assert await bodies_numbered(registry, writer, payload["approval_number"]) == []


class TestReadBody:
    async def test_any_principal_reads_a_body_of_another_province(self, registry, writer, token_for, places):
        body = await create_certification_body(registry, writer)
        reader = token_for(places["away"], roles=("enforcement",))
        response = await registry.get(f"{BODIES}/{body['id']}", headers=auth(reader))
        assert response.status_code == 200
        assert response.json() == body
        assert response.headers["etag"] == '"1"'

    async def test_renewal_is_due_within_the_notice_period(self, registry, writer):
        today = rules.today()
        due = await create_certification_body(
            registry,
            writer,
            approval_expires_on=(today + timedelta(days=rules.BODY_RENEWAL_NOTICE.value)).isoformat(),
        )
        later = await create_certification_body(
            registry,
            writer,
            approval_expires_on=(today + timedelta(days=rules.BODY_RENEWAL_NOTICE.value + 1)).isoformat(),
        )
        assert (due["renewal_due"], due["approval_expired"]) == (True, False)
        assert (later["renewal_due"], later["approval_expired"]) == (False, False)

    async def test_a_missing_body_is_not_found(self, registry, token_for):
        response = await registry.get(f"{BODIES}/{2**52}", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    async def test_reading_needs_a_token(self, registry, writer):
        body = await create_certification_body(registry, writer)
        response = await registry.get(f"{BODIES}/{body['id']}")
        assert response.status_code == 401
        assert response.json()["type"] == "/problems/unauthorized"


class TestListBodies:
    async def test_filters_by_scheme_designation_status_name_and_bureau(self, registry, token_for, places):
        token = token_for(places["below"], roles=("supervision",))
        marker = unique("过滤认证")
        ccc = await create_certification_body(
            registry, token, name=f"{marker}甲", approved_schemes=["ccc"], ccc_designations=["0701"]
        )
        qms = await create_certification_body(
            registry, token, name=f"{marker}乙", approved_schemes=["qms"], ccc_designations=[]
        )
        expired = await create_certification_body(
            registry, token, name=f"{marker}丙", approved_on="2010-01-01", status="expired"
        )

        async def ids(**params) -> list[int]:
            response = await registry.get(BODIES, params={"q": marker, **params}, headers=auth(token_for()))
            assert response.status_code == 200, response.text
            return [b["id"] for b in response.json()["items"]]

        assert await ids() == [ccc["id"], qms["id"], expired["id"]]
        assert await ids(scheme="ccc") == [ccc["id"], expired["id"]]
        assert await ids(scheme="qms") == [qms["id"], expired["id"]]
        assert await ids(ccc_designation="0701") == [ccc["id"]]
        assert await ids(status="expired") == [expired["id"]]
        assert await ids(bureau_id=places["below"]["id"]) == [ccc["id"], qms["id"], expired["id"]]
        assert await ids(bureau_id=places["away"]["id"]) == []

    async def test_pages_follow_the_cursor(self, registry, writer, token_for):
        marker = unique("分页认证")
        made = [
            (await create_certification_body(registry, writer, name=f"{marker}{i}"))["id"] for i in range(3)
        ]
        seen, cursor = [], None
        while True:
            params = {"q": marker, "limit": 2, **({"cursor": cursor} if cursor else {})}
            response = await registry.get(BODIES, params=params, headers=auth(token_for()))
            page = response.json()
            seen += [b["id"] for b in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == made

    @pytest.mark.parametrize(
        "params", [{"ccc_designation": "09"}, {"scheme": "iso"}, {"limit": 501}, {"q": ""}]
    )
    async def test_malformed_filters_are_refused(self, registry, token_for, params):
        response = await registry.get(BODIES, params=params, headers=auth(token_for()))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"


class TestUpdateBody:
    async def test_a_change_with_if_match_makes_a_new_version(self, registry, writer):
        body = await create_certification_body(registry, writer)
        before = await audit_count(registry)
        response = await registry.patch(
            f"{BODIES}/{body['id']}",
            json={"status": "suspended", "ccc_designations": ["0901", "0702"]},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["status"], changed["ccc_designations"], changed["version"]) == (
            "suspended",
            ["0901", "0702"],
            2,
        )
        assert response.headers["etag"] == '"2"'
        assert await audit_count(registry) == before + 1

    async def test_a_renewal_moves_the_expiry_with_the_grant(self, registry, writer):
        body = await create_certification_body(registry, writer, approved_on="2010-05-01", status="expired")
        renewed_on = rules.today().replace(day=1).isoformat()
        response = await registry.patch(
            f"{BODIES}/{body['id']}",
            json={"status": "approved", "approved_on": renewed_on},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        renewed = response.json()
        assert (
            renewed["approval_expires_on"] == rules.approval_expiry(rules.today().replace(day=1)).isoformat()
        )
        assert (renewed["status"], renewed["approval_expired"]) == ("approved", False)

    async def test_approving_an_expired_approval_without_new_dates_is_refused(self, registry, writer):
        body = await create_certification_body(registry, writer, approved_on="2010-05-01", status="expired")
        response = await registry.patch(
            f"{BODIES}/{body['id']}", json={"status": "approved"}, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/approval-expired"
        assert (await registry.get(f"{BODIES}/{body['id']}", headers=auth(writer))).json() == body

    async def test_an_approval_that_ran_out_unrecorded_does_not_block_other_changes(
        self, registry, writer, places
    ):
        home = places["home"]
        stale = await insert_row(
            registry,
            CertificationBody,
            approval_number=approval_number(),
            name=unique("过期未登记"),
            approved_on=date(2015, 1, 1),
            approval_expires_on=date(2020, 12, 31),
            approved_schemes=["qms"],
            bureau_id=home["id"],
            bureau_path=home["path"],
        )
        url = f"{BODIES}/{stale['id']}"
        assert (await registry.get(url, headers=auth(writer))).json()["approval_expired"] is True
        renamed = await registry.patch(
            url, json={"name": "更名认证公司"}, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["status"], renamed.json()["approval_expired"]) == ("approved", True)
        response = await registry.patch(
            url,
            json={"status": "approved", "approved_schemes": ["qms"]},
            headers={**auth(writer), "If-Match": '"2"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/approval-expired"

    async def test_a_revoked_body_stays_revoked(self, registry, writer):
        body = await create_certification_body(registry, writer, status="revoked")
        response = await registry.patch(
            f"{BODIES}/{body['id']}", json={"status": "approved"}, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/invalid-transition"
        assert problem["allowed"] == []
        assert (await registry.get(f"{BODIES}/{body['id']}", headers=auth(writer))).json()[
            "status"
        ] == "revoked"

    async def test_a_stale_if_match_is_refused(self, registry, writer):
        body = await create_certification_body(registry, writer)
        url = f"{BODIES}/{body['id']}"
        assert (
            await registry.patch(
                url, json={"name": unique("新名")}, headers={**auth(writer), "If-Match": '"1"'}
            )
        ).status_code == 200
        response = await registry.patch(
            url, json={"name": unique("旧名")}, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        assert (await registry.get(url, headers=auth(writer))).json()["version"] == 2

    async def test_a_missing_if_match_is_refused(self, registry, writer):
        body = await create_certification_body(registry, writer)
        response = await registry.patch(
            f"{BODIES}/{body['id']}", json={"name": unique("新名")}, headers=auth(writer)
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert (await registry.get(f"{BODIES}/{body['id']}", headers=auth(writer))).json() == body

    async def test_a_body_outside_scope_is_not_found_like_a_missing_one(
        self, registry, writer, token_for, places
    ):
        body = await create_certification_body(registry, writer)
        outsider = token_for(places["away"], roles=("supervision",))
        headers = {**auth(outsider), "If-Match": '"1"'}
        outside = await registry.patch(f"{BODIES}/{body['id']}", json={"name": unique("改")}, headers=headers)
        missing = await registry.patch(f"{BODIES}/{2**52}", json={"name": unique("改")}, headers=headers)
        assert outside.status_code == missing.status_code == 404
        assert same_problem(outside.json(), body["id"]) == same_problem(missing.json(), 2**52)
        assert (await registry.get(f"{BODIES}/{body['id']}", headers=auth(writer))).json() == body

    async def test_a_bureau_below_cannot_change_a_body_kept_above(self, registry, writer, token_for, places):
        body = await create_certification_body(registry, writer)
        city = token_for(places["below"], roles=("supervision",))
        response = await registry.patch(
            f"{BODIES}/{body['id']}", json={"name": unique("改")}, headers={**auth(city), "If-Match": '"1"'}
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    async def test_an_enforcement_officer_is_refused(self, registry, writer, token_for, places):
        body = await create_certification_body(registry, writer)
        officer = token_for(places["home"], roles=("enforcement",))
        response = await registry.patch(
            f"{BODIES}/{body['id']}",
            json={"name": unique("改")},
            headers={**auth(officer), "If-Match": '"1"'},
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"

    async def test_a_credit_code_of_another_body_is_refused(self, registry, writer):
        other = await create_certification_body(registry, writer, credit_code=credit_code())
        body = await create_certification_body(registry, writer)
        response = await registry.patch(
            f"{BODIES}/{body['id']}",
            json={"credit_code": other["credit_code"]},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/body-credit-code-taken"

    async def test_an_empty_change_is_refused(self, registry, writer):
        body = await create_certification_body(registry, writer)
        response = await registry.patch(
            f"{BODIES}/{body['id']}", json={}, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["type"] == "empty_update"

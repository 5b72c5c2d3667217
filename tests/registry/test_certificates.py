"""Certificates (认证证书): registration, reading, lookup by number and corrections — rules,
scope, roles and bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.common.auth import PrincipalKind
from services.registry.certification.certificates import rules
from tests.conftest import auth
from tests.factories import (
    audit_entries,
    ccc_number,
    make_body,
    make_enterprise,
    make_product,
    management_system_number,
)
from tests.registry.certificate_helpers import (
    CERTIFICATES,
    build_chain,
    certificate_rows,
    iso,
    links_of,
    payload,
    register,
)

MISSING_ID = 987_654_321


@pytest.fixture(scope="module")
async def chain(registry, token_for):
    return await build_chain(registry, token_for)


@pytest.fixture
def writer(token_for, chain):
    """A supervision officer of Zhejiang's provincial unit."""
    return token_for(chain["zj"], roles=("supervision",))


def masked(problem: dict, asked: object) -> dict:
    out = {k: v for k, v in problem.items() if k != "request_id"}
    if "detail" in out:
        out["detail"] = out["detail"].replace(str(asked), "<asked>")
    return out


class TestRegisterCertificate:
    async def test_ccc_certificate_with_products_auditors_and_default_validity(self, registry, writer, chain):
        body = payload(chain, number=ccc_number(2016, "01", "0901"))
        response = await registry.post(CERTIFICATES, json=body, headers=auth(writer))
        assert response.status_code == 201, response.text
        certificate = response.json()
        assert certificate["number"] == body["number"]
        assert certificate["scheme"] == "ccc"
        assert certificate["status"] == "valid"
        assert certificate["exchange_status"] == "expired"  # issued 2016, 5 years: past
        # CCC: 5 years of validity by default, kept as data.
        assert certificate["expires_on"] == "2021-02-28"
        assert certificate["holder_name"] == chain["holder"]["name"]
        assert certificate["division_code"] == "330106"
        assert certificate["bureau_id"] == chain["zj"]["id"]
        assert certificate["bureau_path"] == chain["zj"]["path"]
        assert [p["id"] for p in certificate["products"]] == sorted(p["id"] for p in chain["products"])
        assert [a["id"] for a in certificate["auditors"]] == sorted(a["id"] for a in chain["auditors"])
        assert certificate["version"] == 1
        assert response.headers["location"] == f"{CERTIFICATES}/{certificate['id']}"
        assert response.headers["etag"] == '"1"'
        entries = await audit_entries(registry, "certificate", certificate["id"])
        assert [e["action"] for e in entries] == ["certificate.created"]
        assert await links_of(registry, certificate["id"]) == (2, 2, 1)

    async def test_number_is_normalised(self, registry, writer, chain):
        number = management_system_number()
        certificate = await register(
            registry,
            writer,
            payload(chain, scheme="qms", number=f"  {number.lower()} ", expires_on="2019-02-28"),
        )
        assert certificate["number"] == number

    async def test_older_twelve_digit_ccc_number(self, registry, writer, chain):
        number = f"{ccc_number()[:12]}"
        certificate = await register(registry, writer, payload(chain, number=number))
        assert certificate["number"] == number

    async def test_management_system_number_needs_its_expiry(self, registry, writer, chain):
        number = management_system_number()
        response = await registry.post(
            CERTIFICATES,
            json=payload(chain, scheme="qms", number=number, product_ids=[]),
            headers=auth(writer),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.expires_on"
        assert await certificate_rows(registry, number=number) == 0

    async def test_given_expiry_is_kept(self, registry, writer, chain):
        certificate = await register(registry, writer, payload(chain, expires_on="2018-12-31"))
        assert certificate["expires_on"] == "2018-12-31"

    async def test_without_products_or_auditors(self, registry, writer, chain):
        certificate = await register(
            registry,
            writer,
            payload(chain, scheme="qms", number=management_system_number(), expires_on="2019-02-28")
            | {"product_ids": [], "auditor_ids": []},
        )
        assert certificate["products"] == [] and certificate["auditors"] == []

    async def test_kept_by_a_bureau_in_the_subtree(self, registry, token_for, chain):
        token = token_for(chain["zj"], roles=("supervision",))
        certificate = await register(registry, token, payload(chain, bureau_id=chain["county"]["id"]))
        assert certificate["bureau_id"] == chain["county"]["id"]
        assert certificate["bureau_path"] == chain["county"]["path"]

    @pytest.mark.parametrize("role", ["admin", "system"])
    async def test_other_writing_roles(self, registry, token_for, chain, role):
        kind = PrincipalKind.SYSTEM if role == "system" else PrincipalKind.OFFICER
        token = token_for(chain["zj"], roles=(role,), kind=kind)
        await register(registry, token, payload(chain))


class TestRegisterCertificateRefused:
    @pytest.mark.parametrize(
        ("scheme", "number"),
        [
            ("ccc", "201601090112345"),  # 15 digits
            ("ccc", "20160109011234567"),  # 17 digits
            ("ccc", "19990109011234AB"),
            ("ccc", "1999010901123456"),  # no CCC before 2002
            ("qms", "Q1"),  # too short
            ("qms", "00216Q1 0097R1S"),  # a space inside
            ("qms", "00216Q10097R1S!"),
        ],
    )
    async def test_wrong_number_is_a_field_error_and_writes_nothing(
        self, registry, writer, chain, scheme, number
    ):
        response = await registry.post(
            CERTIFICATES,
            json=payload(chain, scheme=scheme, number=number, expires_on="2020-01-01"),
            headers=auth(writer),
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        assert [e["loc"] for e in problem["errors"]] == ["body.number"]
        assert number in problem["errors"][0]["message"]  # the message names the value and its rule
        assert await certificate_rows(registry, number=number.strip().upper()) == 0

    async def test_duplicate_number_in_the_scheme(self, registry, writer, chain):
        first = await register(registry, writer, payload(chain))
        response = await registry.post(
            CERTIFICATES, json=payload(chain, number=first["number"]), headers=auth(writer)
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/certificate-number-taken"
        assert await certificate_rows(registry, number=first["number"]) == 1

    async def test_same_number_in_another_scheme_is_another_certificate(self, registry, writer, chain):
        number = management_system_number()
        for scheme in ("qms", "ems"):
            await register(
                registry,
                writer,
                payload(chain, scheme=scheme, number=number, expires_on="2019-01-01", product_ids=[]),
            )
        assert await certificate_rows(registry, number=number) == 2

    async def test_body_not_approved(self, registry, writer, chain):
        body = payload(chain, body_id=chain["suspended_body"]["id"])
        response = await registry.post(CERTIFICATES, json=body, headers=auth(writer))
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/body-not-approved"
        assert response.json()["body_status"] == "suspended"
        assert await certificate_rows(registry, number=body["number"]) == 0

    @pytest.mark.parametrize("status", ["revoked", "expired"])
    async def test_body_revoked_or_expired(self, registry, writer, chain, status):
        body_row = await make_body(registry, chain["zj"], status=status)
        response = await registry.post(
            CERTIFICATES, json=payload(chain, body_id=body_row["id"]), headers=auth(writer)
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/body-not-approved"

    async def test_holder_merged_into_another(self, registry, writer, chain):
        kept = await make_enterprise(registry, chain["zj"])
        merged = await make_enterprise(registry, chain["zj"], status="merged", merged_into_id=kept["id"])
        body = payload(chain, holder_id=merged["id"], product_ids=[])
        response = await registry.post(CERTIFICATES, json=body, headers=auth(writer))
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/enterprise-merged"
        assert problem["merged_into_id"] == kept["id"]
        assert await certificate_rows(registry, number=body["number"]) == 0

    async def test_product_of_another_holder(self, registry, writer, chain):
        other = await make_enterprise(registry, chain["zj"])
        foreign = await make_product(registry, other)
        body = payload(chain, product_ids=[chain["products"][0]["id"], foreign["id"]])
        response = await registry.post(CERTIFICATES, json=body, headers=auth(writer))
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/product-not-of-holder"
        assert response.json()["product_ids"] == [foreign["id"]]
        assert await certificate_rows(registry, number=body["number"]) == 0

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("body_id", MISSING_ID),
            ("holder_id", MISSING_ID),
            ("product_ids", [MISSING_ID]),
            ("auditor_ids", [MISSING_ID]),
        ],
    )
    async def test_missing_reference_is_a_field_error(self, registry, writer, chain, field, value):
        body = payload(chain, **{field: value})
        response = await registry.post(CERTIFICATES, json=body, headers=auth(writer))
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/validation-error"
        assert problem["errors"][0]["loc"] == f"body.{field}"
        assert await certificate_rows(registry, number=body["number"]) == 0

    @pytest.mark.parametrize(
        ("change", "loc"),
        [
            ({"expires_on": "2016-03-01"}, "body.expires_on"),  # not after issued_on
            ({"expires_on": "2015-01-01"}, "body.expires_on"),
            ({"issued_on": "2016/03/01"}, "body.issued_on"),
            ({"issued_on": 1456790400}, "body.issued_on"),  # a timestamp is not a legal date
            ({"issued_on": "2016-02-30"}, "body.issued_on"),
            ({"scheme": "iso"}, "body.scheme"),
            ({"product_ids": [1, 1]}, "body.product_ids"),
            ({"auditor_ids": ["1"]}, "body.auditor_ids.0"),
            ({"status": "suspended"}, "body.status"),  # the status is not given, it is valid
            ({"holder_name": "别的名字"}, "body.holder_name"),  # copied from the enterprise
            ({"scope": "x" * 2001}, "body.scope"),
            ({"scope": "含\x00字符"}, "body"),
        ],
    )
    async def test_malformed_payload(self, registry, writer, chain, change, loc):
        body = payload(chain, **change)
        response = await registry.post(CERTIFICATES, json=body, headers=auth(writer))
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "/problems/validation-error"
        assert loc in [e["loc"] for e in response.json()["errors"]]
        assert await certificate_rows(registry, number=body["number"]) == 0

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_roles_that_do_not_write_the_registry(self, registry, token_for, chain, role):
        body = payload(chain)
        response = await registry.post(
            CERTIFICATES, json=body, headers=auth(token_for(chain["zj"], roles=(role,)))
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await certificate_rows(registry, number=body["number"]) == 0

    async def test_keeping_bureau_out_of_scope_looks_missing(self, registry, token_for, chain):
        token = token_for(chain["city"], roles=("supervision",))
        answers = []
        for bureau_id in (chain["sd"]["id"], MISSING_ID):
            body = payload(chain, bureau_id=bureau_id)
            response = await registry.post(CERTIFICATES, json=body, headers=auth(token))
            assert response.status_code == 404
            assert await certificate_rows(registry, number=body["number"]) == 0
            answers.append(masked(response.json(), bureau_id))
        assert answers[0] == answers[1]
        assert answers[0]["type"] == "/problems/not-found"

    async def test_parent_bureau_is_out_of_a_city_officers_scope(self, registry, token_for, chain):
        token = token_for(chain["city"], roles=("supervision",))
        body = payload(chain, bureau_id=chain["zj"]["id"])
        response = await registry.post(CERTIFICATES, json=body, headers=auth(token))
        assert response.status_code == 404
        assert await certificate_rows(registry, number=body["number"]) == 0

    async def test_without_a_token(self, registry, chain):
        response = await registry.post(CERTIFICATES, json=payload(chain))
        assert response.status_code == 401


class TestReadCertificate:
    async def test_readable_by_a_principal_of_another_province(self, registry, writer, token_for, chain):
        created = await register(registry, writer, payload(chain))
        reader = token_for(chain["sd"], roles=("enforcement",))
        response = await registry.get(f"{CERTIFICATES}/{created['id']}", headers=auth(reader))
        assert response.status_code == 200
        assert response.json() == created
        assert response.headers["etag"] == '"1"'

    async def test_missing(self, registry, token_for):
        response = await registry.get(f"{CERTIFICATES}/{MISSING_ID}", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    @pytest.mark.parametrize("bad", ["0", "abc", str(2**53)])
    async def test_bad_id(self, registry, token_for, bad):
        response = await registry.get(f"{CERTIFICATES}/{bad}", headers=auth(token_for()))
        assert response.status_code == 422

    async def test_lookup_by_number_across_schemes(self, registry, writer, token_for, chain):
        number = management_system_number()
        made = [
            await register(
                registry,
                writer,
                payload(chain, scheme=scheme, number=number, expires_on="2030-01-01", product_ids=[]),
            )
            for scheme in ("qms", "ems")
        ]
        other = await register(registry, writer, payload(chain))
        reader = token_for(chain["sd"], roles=("legal",))
        response = await registry.get(CERTIFICATES, params={"number": number.lower()}, headers=auth(reader))
        assert response.status_code == 200
        items = response.json()["items"]
        assert [c["id"] for c in items] == [made[1]["id"], made[0]["id"]]
        assert other["id"] not in [c["id"] for c in items]
        assert {c["scheme"] for c in items} == {"qms", "ems"}

    async def test_lookup_of_an_unknown_number_is_empty(self, registry, token_for):
        response = await registry.get(
            CERTIFICATES, params={"number": ccc_number()}, headers=auth(token_for())
        )
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}


class TestComputedConditions:
    """Exchange vocabulary, "expired" and the renewal window come from the dates, as of today."""

    async def test_current_certificate_is_active(self, registry, writer, chain):
        today = rules.today()
        certificate = await register(
            registry, writer, payload(chain, issued_on=iso(today - timedelta(days=30)))
        )
        assert certificate["status"] == "valid"
        assert certificate["exchange_status"] == "active"
        assert certificate["expired"] is False
        assert certificate["renewal_window_open"] is False

    async def test_valid_but_past_expiry_is_expired(self, registry, writer, chain):
        today = rules.today()
        certificate = await register(
            registry,
            writer,
            payload(chain, issued_on="2010-01-01", expires_on=iso(today - timedelta(days=1))),
        )
        assert certificate["status"] == "valid"  # not a stored state
        assert certificate["expired"] is True
        assert certificate["exchange_status"] == "expired"

    async def test_last_day_of_validity_is_not_expired(self, registry, writer, chain):
        today = rules.today()
        certificate = await register(
            registry, writer, payload(chain, issued_on="2022-01-01", expires_on=iso(today))
        )
        assert certificate["expired"] is False
        assert certificate["exchange_status"] == "active"

    @pytest.mark.parametrize(("days_left", "open_"), [(0, True), (89, True), (90, False), (200, False)])
    async def test_ccc_renewal_window_is_the_last_90_days(self, registry, writer, chain, days_left, open_):
        today = rules.today()
        certificate = await register(
            registry,
            writer,
            payload(chain, issued_on="2022-01-01", expires_on=iso(today + timedelta(days=days_left))),
        )
        assert certificate["renewal_window_open"] is open_

    async def test_no_renewal_window_for_a_scheme_without_one(self, registry, writer, chain):
        today = rules.today()
        certificate = await register(
            registry,
            writer,
            payload(
                chain,
                scheme="qms",
                number=management_system_number(),
                product_ids=[],
                issued_on=iso(today - timedelta(days=30)),
                expires_on=iso(today + timedelta(days=10)),
            ),
        )
        assert certificate["renewal_window_open"] is False

    def test_exchange_vocabulary(self):
        on = date(2026, 1, 1)
        far, past = date(2030, 1, 1), date(2020, 1, 1)
        assert rules.exchange_status("valid", far, on) == "active"
        assert rules.exchange_status("suspended", far, on) == "suspended"
        assert rules.exchange_status("revoked", far, on) == "withdrawn"
        assert rules.exchange_status("cancelled", far, on) == "cancelled"
        assert rules.exchange_status("valid", past, on) == "expired"
        # Only a valid certificate "expires": a revoked one past its date stays withdrawn.
        assert rules.exchange_status("revoked", past, on) == "withdrawn"
        assert rules.exchange_status("suspended", past, on) == "suspended"

    @pytest.mark.parametrize(
        ("day", "months", "expected"),
        [
            (date(2016, 3, 1), 60, date(2021, 3, 1)),
            (date(2020, 1, 31), 1, date(2020, 2, 29)),
            (date(2021, 1, 31), 1, date(2021, 2, 28)),
            (date(2020, 2, 29), -12, date(2019, 2, 28)),
            (date(2020, 12, 15), 1, date(2021, 1, 15)),
            (date(2021, 1, 15), -1, date(2020, 12, 15)),
        ],
    )
    def test_month_arithmetic(self, day, months, expected):
        assert rules.add_months(day, months) == expected

    def test_default_validity_is_data(self):
        assert rules.default_expiry("ccc", date(2016, 3, 1)) == date(2021, 2, 28)
        assert rules.default_expiry("qms", date(2016, 3, 1)) is None


class TestCorrectCertificate:
    async def test_scope_and_expiry_corrected_with_if_match(self, registry, writer, chain):
        created = await register(registry, writer, payload(chain))
        response = await registry.patch(
            f"{CERTIFICATES}/{created['id']}",
            json={"scope": "  电动自行车用充电器（更正）  ", "expires_on": "2021-03-31"},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 200, response.text
        corrected = response.json()
        assert corrected["scope"] == "电动自行车用充电器（更正）"
        assert corrected["expires_on"] == "2021-03-31"
        assert corrected["version"] == 2
        assert corrected["status"] == "valid"
        assert response.headers["etag"] == '"2"'
        entries = await audit_entries(registry, "certificate", created["id"])
        assert [e["action"] for e in entries] == ["certificate.created", "certificate.updated"]

    async def test_missing_if_match(self, registry, writer, chain):
        created = await register(registry, writer, payload(chain))
        response = await registry.patch(
            f"{CERTIFICATES}/{created['id']}", json={"scope": "新范围"}, headers=auth(writer)
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert (await registry.get(f"{CERTIFICATES}/{created['id']}", headers=auth(writer))).json() == created

    async def test_stale_if_match(self, registry, writer, chain):
        created = await register(registry, writer, payload(chain))
        first = await registry.patch(
            f"{CERTIFICATES}/{created['id']}",
            json={"scope": "第一次更正"},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert first.status_code == 200
        response = await registry.patch(
            f"{CERTIFICATES}/{created['id']}",
            json={"scope": "第二次更正"},
            headers={**auth(writer), "If-Match": '"1"'},
        )
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        current = (await registry.get(f"{CERTIFICATES}/{created['id']}", headers=auth(writer))).json()
        assert current["scope"] == "第一次更正" and current["version"] == 2

    @pytest.mark.parametrize(
        ("change", "loc"),
        [
            ({"status": "revoked"}, "body.status"),  # only by its steps
            ({"number": "2016010901123456"}, "body.number"),
            ({"expires_on": None}, "body.expires_on"),
            ({"expires_on": "2016-02-01"}, "body.expires_on"),  # before issued_on
            ({}, "body"),
        ],
    )
    async def test_bad_corrections(self, registry, writer, chain, change, loc):
        created = await register(registry, writer, payload(chain))
        response = await registry.patch(
            f"{CERTIFICATES}/{created['id']}", json=change, headers={**auth(writer), "If-Match": '"1"'}
        )
        assert response.status_code == 422, response.text
        assert response.json()["type"] == "/problems/validation-error"
        assert loc in [e["loc"] for e in response.json()["errors"]]
        assert (await registry.get(f"{CERTIFICATES}/{created['id']}", headers=auth(writer))).json() == created

    async def test_out_of_scope_looks_missing(self, registry, writer, token_for, chain):
        created = await register(registry, writer, payload(chain))
        outsider = token_for(chain["sd"], roles=("supervision",))
        answers = []
        for certificate_id in (created["id"], MISSING_ID):
            response = await registry.patch(
                f"{CERTIFICATES}/{certificate_id}",
                json={"scope": "越权更正"},
                headers={**auth(outsider), "If-Match": '"1"'},
            )
            assert response.status_code == 404
            answers.append(masked(response.json(), certificate_id))
        assert answers[0] == answers[1]
        assert (await registry.get(f"{CERTIFICATES}/{created['id']}", headers=auth(writer))).json() == created

    async def test_lower_bureau_cannot_correct_a_provincial_record(self, registry, writer, token_for, chain):
        created = await register(registry, writer, payload(chain))
        county = token_for(chain["county"], roles=("supervision",))
        response = await registry.patch(
            f"{CERTIFICATES}/{created['id']}",
            json={"scope": "越权更正"},
            headers={**auth(county), "If-Match": '"1"'},
        )
        assert response.status_code == 404

    async def test_role_refused(self, registry, writer, token_for, chain):
        created = await register(registry, writer, payload(chain))
        response = await registry.patch(
            f"{CERTIFICATES}/{created['id']}",
            json={"scope": "越权更正"},
            headers={**auth(token_for(chain["zj"], roles=("enforcement",))), "If-Match": '"1"'},
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"

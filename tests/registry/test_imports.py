"""Bulk sync (批量同步): NDJSON and CSV uploads of enterprises, products and certificates,
streamed and written in batches; refused rows reported with their rule, the others written;
a re-sent file changes nothing; scope, roles and malformed uploads."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from datetime import date

import orjson
import pytest
from sqlalchemy import text

from services.common.auth import PrincipalKind, Role
from services.registry.certification.identifiers import org_code_of
from services.registry.config import RegistrySettings
from tests.conftest import _app_client, auth
from tests.factories import approval_number, create_bureau, credit_code, org_code, pilot_unit, unique

IMPORTS = "/api/v1/registry/imports"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
NOT_FOUND = "/problems/not-found"


# --- data of the tests ---------------------------------------------------------------------


async def sql(client, statement: str, **params):
    async with client.app.state.sessionmaker() as session:
        result = await session.exec(text(statement), params=params)
        await session.commit()
        return result


async def insert_body(client, *, ccc_body_code: str | None = None) -> dict:
    """A certification body (认证机构), written straight to its table: the body API is another
    part's work."""
    for _ in range(50):
        # From the run's one sequence: a random number here could be one the factory hands out later.
        approval = approval_number()
        result = await sql(
            client,
            """INSERT INTO certification_body (approval_number, name, ccc_body_code, approved_on,
                   approval_expires_on, approved_schemes, ccc_designations, status, bureau_id, bureau_path,
                   version, created_at, updated_at)
               VALUES (:approval, :name, :code, '2002-05-01', '2030-04-30', '["ccc"]', '[]', 'approved',
                       1, '1.', 1, now(), now())
               ON CONFLICT DO NOTHING RETURNING id""",
            approval=approval,
            name=unique("认证中心"),
            code=ccc_body_code,
        )
        row = result.first()
        if row is not None:
            return {"id": row[0], "approval_number": approval, "ccc_body_code": ccc_body_code}
    raise AssertionError("no free approval number")


async def free_ccc_body_code(client) -> str:
    used = {r[0] for r in (await sql(client, "SELECT ccc_body_code FROM certification_body")).all()}
    return random.choice([f"{n:02d}" for n in range(2, 100) if f"{n:02d}" not in used])


def ccc_number(body_code: str) -> str:
    """A 16-digit CCC number of the body, with a random year, category and serial."""
    return (
        f"{random.randint(2003, 2025)}{body_code}{random.randint(0, 9999):04d}{random.randint(0, 999999):06d}"
    )


def ndjson(*rows: dict) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def csv_text(header: list[str], *rows: list) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()


def enterprise(**fields) -> dict:
    return {
        "credit_code": credit_code(),
        "name": unique("浙江电器有限公司"),
        "division_code": "330100",
        **fields,
    }


def certificate(body: dict, holder_code: str, **fields) -> dict:
    return {
        "scheme": "ccc",
        "number": ccc_number(body["ccc_body_code"]),
        "body_approval_number": body["approval_number"],
        "holder_credit_code": holder_code,
        "issued_on": "2021-03-01",
        "expires_on": "2026-02-28",
        "scope": "小型断路器",
        **fields,
    }


async def upload(client, token: str, kind: str, body: bytes, content_type: str = NDJSON, **params):
    return await client.post(
        IMPORTS,
        params={"kind": kind, **params},
        content=body,
        headers={**auth(token), "Content-Type": content_type},
    )


async def imported(client, token: str, kind: str, body: bytes, content_type: str = NDJSON, **params) -> dict:
    response = await upload(client, token, kind, body, content_type, **params)
    assert response.status_code == 201, response.text
    return response.json()


async def row_errors(client, token: str, import_id: int) -> dict[int, list[dict]]:
    response = await client.get(f"{IMPORTS}/{import_id}/errors", params={"limit": 500}, headers=auth(token))
    assert response.status_code == 200, response.text
    return {item["row_number"]: item["errors"] for item in response.json()["items"]}


def types(errors: list[dict]) -> list[str]:
    return [e["type"] for e in errors]


async def enterprise_row(client, *, credit: str | None = None, org: str | None = None):
    column, value = ("credit_code", credit) if credit else ("org_code", org)
    result = await sql(client, f"SELECT * FROM enterprise WHERE {column} = :v", v=value)
    return result.mappings().first()


async def certificate_row(client, number: str, scheme: str = "ccc"):
    result = await sql(
        client, "SELECT * FROM certificate WHERE scheme = :s AND number = :n", s=scheme, n=number
    )
    return result.mappings().first()


async def product_models(client, certificate_id: int) -> set[str]:
    result = await sql(
        client,
        "SELECT p.model FROM certificate_product cp JOIN product p ON p.id = cp.product_id "
        "WHERE cp.certificate_id = :c",
        c=certificate_id,
    )
    return {r[0] for r in result.all()}


@pytest.fixture(scope="module")
async def world(registry, token_for):
    """Zhejiang's and Shandong's quality-supervision units, a city under Zhejiang, their
    provincial systems, and a CCC certification body with its own body code."""
    national = token_for()
    zj = await pilot_unit(registry, national, "quality_supervision", "330000")
    sd = await pilot_unit(registry, national, "quality_supervision", "370000")
    city = await create_bureau(registry, national, zj, "city", "330100")
    body = await insert_body(registry, ccc_body_code=await free_ccc_body_code(registry))

    def system(bureau: dict) -> str:
        return token_for(bureau, roles=(Role.SYSTEM,), kind=PrincipalKind.SYSTEM)

    return {
        "zj": zj,
        "sd": sd,
        "city": city,
        "body": body,
        "zj_system": system(zj),
        "sd_system": system(sd),
        "city_system": system(city),
    }


@pytest.fixture
async def holder(registry, world) -> dict:
    """An enterprise of Zhejiang, registered by an import."""
    row = enterprise()
    await imported(registry, world["zj_system"], "enterprises", ndjson(row))
    return row


# --- each kind in each format ---------------------------------------------------------------


class TestEnterprises:
    async def test_ndjson_registers_enterprises_in_the_principals_bureau(self, registry, world):
        old = enterprise(credit_code=None, org_code=org_code(), address="宁波市江北区")
        new = enterprise()
        response = await upload(registry, world["zj_system"], "enterprises", ndjson(new, old))
        assert response.status_code == 201, response.text
        batch = response.json()
        assert batch["kind"] == "enterprises" and batch["format"] == "ndjson"
        assert batch["status"] == "completed"
        assert (batch["rows_total"], batch["rows_written"], batch["rows_failed"]) == (2, 2, 0)
        assert (batch["rows_inserted"], batch["rows_updated"], batch["rows_unchanged"]) == (2, 0, 0)
        assert response.headers["location"] == f"{IMPORTS}/{batch['id']}"
        stored = await enterprise_row(registry, credit=new["credit_code"])
        assert stored["name"] == new["name"] and stored["division_code"] == "330100"
        assert stored["bureau_id"] == world["zj"]["id"] and stored["bureau_path"] == world["zj"]["path"]
        assert stored["import_id"] == batch["id"] and stored["version"] == 1
        older = await enterprise_row(registry, org=old["org_code"])
        assert older["credit_code"] is None and older["address"] == "宁波市江北区"

    async def test_csv_registers_enterprises(self, registry, world):
        a, b = credit_code(), org_code()
        body = csv_text(
            ["credit_code", "org_code", "name", "division_code", "address"],
            [a, "", "杭州甲电器有限公司", "330100", "杭州市"],
            ["", b, "宁波乙开关厂", "330200", ""],
        )
        batch = await imported(registry, world["zj_system"], "enterprises", body, CSV)
        assert batch["format"] == "csv" and batch["rows_inserted"] == 2
        assert (await enterprise_row(registry, credit=a))["name"] == "杭州甲电器有限公司"
        assert (await enterprise_row(registry, org=b))["division_code"] == "330200"

    async def test_the_same_enterprise_under_its_old_and_new_code_is_one_record(self, registry, world):
        org = org_code()
        credit = credit_code(org=org)
        first = await imported(
            registry, world["zj_system"], "enterprises", ndjson(enterprise(credit_code=None, org_code=org))
        )
        older = await enterprise_row(registry, org=org)
        second = await imported(
            registry,
            world["zj_system"],
            "enterprises",
            ndjson(enterprise(credit_code=credit, name="新名称有限公司")),
        )
        assert first["rows_inserted"] == 1 and second["rows_updated"] == 1 and second["rows_inserted"] == 0
        now = await enterprise_row(registry, credit=credit)
        assert now["id"] == older["id"] and now["org_code"] == org and now["name"] == "新名称有限公司"
        assert now["version"] == 2
        # And the other way round: an older code finds the record registered under the new one.
        third = await imported(
            registry,
            world["zj_system"],
            "enterprises",
            ndjson(enterprise(credit_code=None, org_code=org, name="新名称有限公司")),
        )
        assert third["rows_unchanged"] == 1 and third["rows_inserted"] == 0

    async def test_a_credit_code_finds_a_record_kept_under_its_organisation_code(self, registry, world):
        credit = credit_code()
        await imported(registry, world["zj_system"], "enterprises", ndjson(enterprise(credit_code=credit)))
        batch = await imported(
            registry,
            world["zj_system"],
            "enterprises",
            ndjson(enterprise(credit_code=None, org_code=org_code_of(credit), name="按旧代码更名有限公司")),
        )
        assert batch["rows_updated"] == 1
        assert (await enterprise_row(registry, credit=credit))["name"] == "按旧代码更名有限公司"


class TestProducts:
    async def test_ndjson_registers_products_of_holders_found_by_either_code(self, registry, world, holder):
        by_credit = {
            "holder_credit_code": holder["credit_code"],
            "name": "小型断路器",
            "category_code": "0201",
            "model": unique("DZ47"),
            "trademark": "某某",
        }
        by_org = {**by_credit, "holder_credit_code": None, "model": unique("DZ48")}
        by_org["holder_org_code"] = org_code_of(holder["credit_code"])
        del by_org["holder_credit_code"]
        batch = await imported(registry, world["zj_system"], "products", ndjson(by_credit, by_org))
        assert batch["rows_inserted"] == 2, batch
        stored = await enterprise_row(registry, credit=holder["credit_code"])
        rows = (
            await sql(registry, "SELECT model, bureau_id FROM product WHERE holder_id = :h", h=stored["id"])
        ).all()
        assert {r[0] for r in rows} == {by_credit["model"], by_org["model"]}
        assert {r[1] for r in rows} == {world["zj"]["id"]}

    async def test_csv_registers_products(self, registry, world, holder):
        model = unique("NXB")
        body = csv_text(
            ["holder_credit_code", "name", "category_code", "model", "trademark"],
            [holder["credit_code"], "漏电断路器", "0201", model, ""],
        )
        batch = await imported(registry, world["zj_system"], "products", body, CSV)
        assert batch["rows_inserted"] == 1
        stored = await sql(registry, "SELECT name, trademark FROM product WHERE model = :m", m=model)
        assert stored.first() == ("漏电断路器", "")

    async def test_unknown_holder_is_reported(self, registry, world):
        missing = credit_code()
        row = {"holder_credit_code": missing, "name": "插头", "category_code": "0801", "model": unique("P")}
        batch = await imported(registry, world["zj_system"], "products", ndjson(row))
        assert batch["rows_failed"] == 1
        errors = (await row_errors(registry, world["zj_system"], batch["id"]))[1]
        assert types(errors) == ["unknown_holder"] and errors[0]["loc"] == "holder_credit_code"


class TestCertificates:
    async def test_ndjson_registers_certificates_with_their_products(self, registry, world, holder):
        model = unique("DZ47")
        await imported(
            registry,
            world["zj_system"],
            "products",
            ndjson(
                {
                    "holder_credit_code": holder["credit_code"],
                    "name": "断路器",
                    "category_code": "0201",
                    "model": model,
                }
            ),
        )
        row = certificate(world["body"], holder["credit_code"], product_models=[model])
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(row))
        assert batch["rows_inserted"] == 1, batch
        stored = await certificate_row(registry, row["number"])
        holder_row = await enterprise_row(registry, credit=holder["credit_code"])
        assert stored["body_id"] == world["body"]["id"] and stored["holder_id"] == holder_row["id"]
        assert stored["holder_name"] == holder["name"] and stored["division_code"] == "330100"
        assert stored["status"] == "valid" and stored["version"] == 1
        assert stored["issued_on"] == date(2021, 3, 1) and stored["expires_on"] == date(2026, 2, 28)
        assert stored["bureau_id"] == world["zj"]["id"]
        assert await product_models(registry, stored["id"]) == {model}
        history = (
            await sql(
                registry,
                "SELECT from_status, to_status, actor_kind FROM certificate_status_change "
                "WHERE certificate_id = :c",
                c=stored["id"],
            )
        ).all()
        assert history == [(None, "valid", "system")]

    async def test_csv_registers_certificates(self, registry, world, holder):
        management = f"00{random.randint(100, 999)}Q{random.randint(10000, 99999)}R0M"
        rows = [
            certificate(world["body"], holder["credit_code"]),
            certificate(
                world["body"], holder["credit_code"], scheme="qms", number=management, scope="电器制造"
            ),
        ]
        header = list(rows[0])
        body = csv_text(header, *([r[name] for name in header] for r in rows))
        batch = await imported(registry, world["zj_system"], "certificates", body, CSV)
        assert batch["rows_inserted"] == 2, await row_errors(registry, world["zj_system"], batch["id"])
        assert (await certificate_row(registry, management, "qms"))["scope"] == "电器制造"

    async def test_csv_product_models_are_separated_by_a_bar(self, registry, world, holder):
        models = [unique("M1"), unique("M2")]
        products = [
            {"holder_credit_code": holder["credit_code"], "name": "开关", "category_code": "0202", "model": m}
            for m in models
        ]
        await imported(registry, world["zj_system"], "products", ndjson(*products))
        row = certificate(world["body"], holder["credit_code"])
        header = [*row, "product_models"]
        body = csv_text(header, [*row.values(), " | ".join(models)])
        batch = await imported(registry, world["zj_system"], "certificates", body, CSV)
        assert batch["rows_inserted"] == 1
        stored = await certificate_row(registry, row["number"])
        assert await product_models(registry, stored["id"]) == set(models)

    async def test_new_rows_can_be_kept_by_a_bureau_of_the_subtree(self, registry, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        batch = await imported(
            registry, world["zj_system"], "certificates", ndjson(row), bureau_id=world["city"]["id"]
        )
        assert batch["bureau_id"] == world["city"]["id"]
        stored = await certificate_row(registry, row["number"])
        assert stored["bureau_id"] == world["city"]["id"] and stored["bureau_path"] == world["city"]["path"]

    async def test_a_bureau_outside_the_subtree_is_not_found(self, registry, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        response = await upload(
            registry, world["zj_system"], "certificates", ndjson(row), bureau_id=world["sd"]["id"]
        )
        assert response.status_code == 404 and response.json()["type"] == NOT_FOUND
        assert await certificate_row(registry, row["number"]) is None


# --- refused rows -----------------------------------------------------------------------------


class TestRefusedRows:
    async def test_a_malformed_row_in_the_middle_is_reported_and_the_others_land(self, registry, world):
        first, bad, last = enterprise(), enterprise(credit_code="91330100MA2B3C4D5E"), enterprise()
        batch = await imported(registry, world["zj_system"], "enterprises", ndjson(first, bad, last))
        assert (batch["rows_total"], batch["rows_written"], batch["rows_failed"]) == (3, 2, 1)
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert list(errors) == [2]
        assert types(errors[2]) == ["credit_code"] and errors[2][0]["loc"] == "credit_code"
        assert await enterprise_row(registry, credit=first["credit_code"]) is not None
        assert await enterprise_row(registry, credit=last["credit_code"]) is not None
        assert (
            await sql(registry, "SELECT count(*) FROM enterprise WHERE name = :n", n=bad["name"])
        ).scalar() == 0

    async def test_a_line_that_is_not_json(self, registry, world):
        good = enterprise()
        body = ndjson(good) + b'{"credit_code": "9133\n' + ndjson(enterprise())
        batch = await imported(registry, world["zj_system"], "enterprises", body)
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {2: ["json_invalid"]}
        assert batch["rows_written"] == 2

    @pytest.mark.parametrize(
        ("change", "rule", "loc"),
        [
            ({"number": "20211234"}, "certificate_number", "number"),
            ({"number": "1999010201000123"}, "certificate_number", "number"),
            ({"scheme": "qms", "number": "q"}, "certificate_number", "number"),
            ({"holder_credit_code": "91330100MA2B3C4D5E"}, "credit_code", "holder_credit_code"),
            ({"holder_credit_code": None}, "enterprise_code_missing", ""),
            ({"body_approval_number": "CNCA-2002-1"}, "approval_number", "body_approval_number"),
            ({"expires_on": "2021-03-01"}, "expiry_before_issue", "expires_on"),
            ({"issued_on": "2021-02-30"}, "date_from_datetime_parsing", "issued_on"),
            ({"scheme": "gmp"}, "enum", "scheme"),
            ({"status": "revoked"}, "extra_forbidden", "status"),
            ({"scope": "x" * 2001}, "string_too_long", "scope"),
            ({"product_models": "DZ47"}, "list_type", "product_models"),
        ],
    )
    async def test_field_rules(self, registry, world, holder, change, rule, loc):
        good = certificate(world["body"], holder["credit_code"])
        bad = certificate(world["body"], holder["credit_code"], **change)
        if change.get("holder_credit_code", "") is None:
            del bad["holder_credit_code"]
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(good, bad))
        errors = (await row_errors(registry, world["zj_system"], batch["id"]))[2]
        assert rule in types(errors), errors
        assert next(e for e in errors if e["type"] == rule)["loc"] == loc
        assert batch["rows_written"] == 1 and await certificate_row(registry, good["number"]) is not None

    async def test_references_the_registry_does_not_hold(self, registry, world, holder):
        other_body = await insert_body(registry)
        rows = [
            certificate(world["body"], holder["credit_code"], body_approval_number="CNCA-R-2001-999"),
            certificate(world["body"], credit_code()),
            certificate(world["body"], holder["credit_code"], product_models=["没有这个型号"]),
            certificate({**other_body, "ccc_body_code": "00"}, holder["credit_code"]),
            certificate(world["body"], holder["credit_code"]),
        ]
        rows[3]["number"] = "2021" + ("98" if world["body"]["ccc_body_code"] != "98" else "97") + "0201000001"
        rows[3]["body_approval_number"] = world["body"]["approval_number"]
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(*rows))
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {
            1: ["unknown_body"],
            2: ["unknown_holder"],
            3: ["unknown_product"],
            4: ["certificate_number_body"],
        }
        assert errors[3][0]["loc"] == "product_models.0"
        assert batch["rows_written"] == 1
        for row in rows[:4]:
            assert await certificate_row(registry, row["number"]) is None

    async def test_enterprise_rules(self, registry, world):
        credit = credit_code()
        rows = [
            enterprise(division_code="339999"),
            enterprise(org_code=org_code()),
            enterprise(credit_code=None),
            {"credit_code": credit, "name": "缺少行政区划有限公司"},
            enterprise(org_code="12345678A"),
        ]
        batch = await imported(registry, world["zj_system"], "enterprises", ndjson(*rows))
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {
            1: ["unknown_division"],
            2: ["enterprise_codes_disagree"],
            3: ["enterprise_code_missing"],
            4: ["missing"],
            5: ["org_code"],
        }
        assert batch["rows_written"] == 0 and await enterprise_row(registry, credit=credit) is None

    async def test_csv_row_with_the_wrong_number_of_cells(self, registry, world):
        good = credit_code()
        body = (
            csv_text(["credit_code", "name", "division_code"], [good, "甲有限公司", "330100"])
            + f"{credit_code()},乙有限公司\n".encode()
        )
        batch = await imported(registry, world["zj_system"], "enterprises", body, CSV)
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {3: ["csv_cells"]}
        assert await enterprise_row(registry, credit=good) is not None

    async def test_csv_quoted_cell_over_two_lines_and_numbering_by_line(self, registry, world):
        a, b = credit_code(), credit_code()
        body = (
            b"credit_code,name,division_code,address\n"
            + f'{a},甲有限公司,330100,"杭州市\n西湖区"\n'.encode()
            + f"{b},,330100,\n".encode()
        )
        batch = await imported(registry, world["zj_system"], "enterprises", body, CSV)
        assert (await enterprise_row(registry, credit=a))["address"] == "杭州市\n西湖区"
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {4: ["missing"]}

    async def test_text_with_the_nul_character(self, registry, world):
        batch = await imported(
            registry, world["zj_system"], "enterprises", ndjson(enterprise(name="甲\u0000有限公司"))
        )
        assert types((await row_errors(registry, world["zj_system"], batch["id"]))[1]) == ["nul_character"]


# --- re-sending ---------------------------------------------------------------------------------


class TestResend:
    async def test_a_re_sent_file_changes_nothing(self, registry, world, holder):
        model = unique("DZ")
        products = ndjson(
            {
                "holder_credit_code": holder["credit_code"],
                "name": "断路器",
                "category_code": "0201",
                "model": model,
            }
        )
        await imported(registry, world["zj_system"], "products", products)
        rows = [
            certificate(world["body"], holder["credit_code"], product_models=[model]),
            certificate(world["body"], holder["credit_code"]),
        ]
        first = await imported(registry, world["zj_system"], "certificates", ndjson(*rows))
        before = [await certificate_row(registry, r["number"]) for r in rows]
        again = await imported(registry, world["zj_system"], "certificates", ndjson(*rows))
        after = [await certificate_row(registry, r["number"]) for r in rows]
        assert (again["rows_unchanged"], again["rows_inserted"], again["rows_updated"]) == (2, 0, 0)
        assert again["digest"] == first["digest"]
        assert [(r["version"], r["updated_at"], r["import_id"]) for r in after] == [
            (r["version"], r["updated_at"], r["import_id"]) for r in before
        ]
        assert await product_models(registry, after[0]["id"]) == {model}
        products_again = await imported(registry, world["zj_system"], "products", products)
        assert products_again["rows_unchanged"] == 1

    async def test_a_changed_row_updates_its_record_and_bumps_its_version(self, registry, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        await imported(registry, world["zj_system"], "certificates", ndjson(row))
        changed = {**row, "expires_on": "2026-12-31", "scope": "小型断路器 (扩项)"}
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(changed))
        assert batch["rows_updated"] == 1
        stored = await certificate_row(registry, row["number"])
        assert stored["version"] == 2 and stored["scope"] == "小型断路器 (扩项)"
        assert stored["expires_on"] == date(2026, 12, 31) and stored["import_id"] == batch["id"]

    async def test_products_named_again_are_exactly_the_ones_covered(self, registry, world, holder):
        models = [unique("A"), unique("B")]
        await imported(
            registry,
            world["zj_system"],
            "products",
            ndjson(
                *(
                    {
                        "holder_credit_code": holder["credit_code"],
                        "name": "开关",
                        "category_code": "0202",
                        "model": m,
                    }
                    for m in models
                )
            ),
        )
        row = certificate(world["body"], holder["credit_code"], product_models=models)
        await imported(registry, world["zj_system"], "certificates", ndjson(row))
        batch = await imported(
            registry, world["zj_system"], "certificates", ndjson({**row, "product_models": models[1:]})
        )
        stored = await certificate_row(registry, row["number"])
        assert batch["rows_updated"] == 1 and stored["version"] == 2
        assert await product_models(registry, stored["id"]) == {models[1]}
        # A row without product_models leaves the covered products as they are.
        untouched = {k: v for k, v in row.items() if k != "product_models"}
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(untouched))
        assert batch["rows_unchanged"] == 1
        assert await product_models(registry, stored["id"]) == {models[1]}

    async def test_the_same_idempotency_key_and_file_replays_the_first_answer(
        self, registry, token_for, world
    ):
        account = str(uuid.uuid4())
        token = token_for(world["zj"], roles=(Role.SYSTEM,), kind=PrincipalKind.SYSTEM, account_id=account)
        body = ndjson(enterprise(), enterprise())
        headers = {**auth(token), "Content-Type": NDJSON, "Idempotency-Key": str(uuid.uuid4())}
        first = await registry.post(IMPORTS, params={"kind": "enterprises"}, content=body, headers=headers)
        again = await registry.post(IMPORTS, params={"kind": "enterprises"}, content=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        other = await registry.post(
            IMPORTS, params={"kind": "enterprises"}, content=ndjson(enterprise()), headers=headers
        )
        assert other.status_code == 422 and other.json()["type"] == "/problems/idempotency-key-reused"
        imports = await sql(registry, "SELECT count(*) FROM import_batch WHERE account = :a", a=account)
        assert imports.scalar() == 1

    async def test_a_number_twice_in_one_file_is_reported_once(self, registry, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        twice = {**row, "scope": "另一个范围"}
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(row, twice))
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {2: ["duplicate_in_file"]}
        assert (await certificate_row(registry, row["number"]))["scope"] == row["scope"]


# --- batches, transactions, audit ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def small_batches(registry):
    """The registry with batches of two rows and small bodies: batch edges and body limits."""
    from services.registry.app import create_app

    settings = RegistrySettings(import_batch_rows=2, max_body_bytes=4000, import_max_body_bytes=20_000)
    async for client in _app_client(create_app(settings), "http://registry"):
        yield client


class TestBatches:
    async def test_one_audit_entry_per_batch_with_the_digest_of_its_rows(self, small_batches, world, holder):
        rows = [certificate(world["body"], holder["credit_code"]) for _ in range(5)]
        rows[3]["number"] = "bad"
        batch = await imported(small_batches, world["zj_system"], "certificates", ndjson(*rows))
        entries = (
            await sql(
                small_batches,
                "SELECT action, data FROM audit_entry WHERE entity = 'import_batch' AND entity_id = :i "
                "ORDER BY id",
                i=str(batch["id"]),
            )
        ).all()
        assert [a for a, _ in entries] == ["import_started", *["import_batch_written"] * 3, "import_finished"]
        written = [e for a, e in entries if a == "import_batch_written"]
        assert [(d["first_row"], d["last_row"], d["rows"], d["failed"]) for d in written] == [
            (1, 2, 2, 0),
            (3, 4, 1, 1),
            (5, 5, 1, 0),
        ]
        lines = ndjson(*rows).splitlines(keepends=True)
        assert written[1]["digest"] == hashlib.sha256(lines[2]).hexdigest()
        assert batch["digest"] == hashlib.sha256(b"".join(lines[i] for i in (0, 1, 2, 4))).hexdigest()
        assert entries[-1][1]["rows_written"] == 4

    async def test_a_number_repeated_in_a_later_batch_is_reported(self, small_batches, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        rows = [row, certificate(world["body"], holder["credit_code"]), {**row, "scope": "后来的范围"}]
        batch = await imported(small_batches, world["zj_system"], "certificates", ndjson(*rows))
        errors = await row_errors(small_batches, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {3: ["duplicate_in_file"]}
        assert (await certificate_row(small_batches, row["number"]))["scope"] == row["scope"]

    async def test_a_repeat_of_a_row_already_as_sent_is_reported(self, small_batches, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        await imported(small_batches, world["zj_system"], "certificates", ndjson(row))
        rows = [row, certificate(world["body"], holder["credit_code"]), {**row, "scope": "后来的范围"}]
        batch = await imported(small_batches, world["zj_system"], "certificates", ndjson(*rows))
        errors = await row_errors(small_batches, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {3: ["duplicate_in_file"]}
        assert (batch["rows_unchanged"], batch["rows_inserted"]) == (1, 1)
        stored = await certificate_row(small_batches, row["number"])
        assert (stored["scope"], stored["version"]) == (row["scope"], 1)

    async def test_a_row_the_database_refuses_is_not_half_written(self, registry, world):
        # Two records of one enterprise (an old one under its organisation code, a new one under
        # its credit code) that nobody merged yet: giving the new one the old code breaks the
        # organisation code's uniqueness, which only the database sees.
        org = org_code()
        credit = credit_code(org=org)
        await imported(
            registry, world["zj_system"], "enterprises", ndjson(enterprise(credit_code=None, org_code=org))
        )
        await sql(
            registry,
            """INSERT INTO enterprise (credit_code, name, division_code, address, status, bureau_id,
                   bureau_path, version, created_at, updated_at)
               VALUES (:c, '另录入的企业', '330100', '', 'active', :b, :p, 1, now(), now())""",
            c=credit,
            b=world["zj"]["id"],
            p=world["zj"]["path"],
        )
        neighbours = [enterprise(), enterprise()]
        clash = enterprise(credit_code=credit, org_code=org, name="改名不应生效有限公司")
        batch = await imported(
            registry, world["zj_system"], "enterprises", ndjson(neighbours[0], clash, neighbours[1])
        )
        errors = await row_errors(registry, world["zj_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {2: ["org_code_taken"]}
        kept = await enterprise_row(registry, credit=credit)
        assert (kept["name"], kept["org_code"], kept["version"]) == ("另录入的企业", None, 1)
        for row in neighbours:
            assert await enterprise_row(registry, credit=row["credit_code"]) is not None
        assert batch["rows_written"] == 2 and batch["rows_failed"] == 1


class TestBodyLimit:
    async def test_the_import_route_alone_takes_large_bodies(self, small_batches, world):
        rows = [enterprise() for _ in range(40)]
        body = ndjson(*rows)
        assert 4000 < len(body) < 20_000
        batch = await imported(small_batches, world["zj_system"], "enterprises", body)
        assert batch["rows_written"] == 40
        other = await small_batches.post(
            "/api/v1/registry/bureaus",
            content=b"{" + b" " * 5000 + b"}",
            headers={**auth(world["zj_system"]), "Content-Type": "application/json"},
        )
        assert other.status_code == 413 and other.json()["type"] == "/problems/payload-too-large"

    async def test_an_import_above_its_own_limit_is_refused(self, small_batches, world):
        body = ndjson(*(enterprise() for _ in range(200)))
        assert len(body) > 20_000
        response = await upload(small_batches, world["zj_system"], "enterprises", body)
        assert response.status_code == 413 and response.json()["type"] == "/problems/payload-too-large"


@pytest.fixture(scope="module")
async def small_gateway(registry_url):
    """The gateway in front of the registry, with small limits: 1,000 bytes, 20,000 for imports."""
    from gateway.app import create_app
    from gateway.config import GatewaySettings

    settings = GatewaySettings(registry_url=registry_url, max_body_bytes=1000, import_max_body_bytes=20_000)
    async for client in _app_client(create_app(settings), "http://gateway"):
        yield client


class TestThroughTheGateway:
    async def test_an_upload_streams_through_the_gateway_under_its_own_limit(self, small_gateway, world):
        rows = [enterprise() for _ in range(30)]
        body = ndjson(*rows)
        assert 1000 < len(body) < 20_000

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 700):
                yield body[start : start + 700]

        response = await small_gateway.post(
            IMPORTS,
            params={"kind": "enterprises"},
            content=chunks(),
            headers={**auth(world["zj_system"]), "Content-Type": NDJSON},
        )
        assert response.status_code == 201, response.text
        assert response.json()["rows_written"] == 30
        assert response.headers["location"] == f"{IMPORTS}/{response.json()['id']}"

    async def test_other_routes_keep_the_gateways_limit(self, small_gateway, world):
        response = await small_gateway.post(
            "/api/v1/registry/bureaus",
            content=b"{" + b" " * 2000 + b"}",
            headers={**auth(world["zj_system"]), "Content-Type": "application/json"},
        )
        assert response.status_code == 413 and response.json()["type"] == "/problems/payload-too-large"

    async def test_an_upload_above_the_import_limit_is_refused_at_the_gateway(self, small_gateway, world):
        response = await small_gateway.post(
            IMPORTS,
            params={"kind": "enterprises"},
            content=ndjson(*(enterprise() for _ in range(200))),
            headers={**auth(world["zj_system"]), "Content-Type": NDJSON},
        )
        assert response.status_code == 413 and response.json()["type"] == "/problems/payload-too-large"


# --- scope and roles --------------------------------------------------------------------------


class TestScope:
    async def test_another_provinces_rows_are_not_changed(self, registry, world, holder):
        row = certificate(world["body"], holder["credit_code"])
        await imported(registry, world["zj_system"], "certificates", ndjson(row))
        mine = certificate(world["body"], holder["credit_code"])
        batch = await imported(
            registry, world["sd_system"], "certificates", ndjson({**row, "scope": "山东改的"}, mine)
        )
        errors = await row_errors(registry, world["sd_system"], batch["id"])
        assert {n: types(e) for n, e in errors.items()} == {1: ["out_of_scope"]}
        stored = await certificate_row(registry, row["number"])
        assert stored["scope"] == row["scope"] and stored["version"] == 1
        assert (await certificate_row(registry, mine["number"]))["bureau_id"] == world["sd"]["id"]
        enterprises = await imported(
            registry, world["sd_system"], "enterprises", ndjson({**holder, "name": "山东改的有限公司"})
        )
        assert types((await row_errors(registry, world["sd_system"], enterprises["id"]))[1]) == [
            "out_of_scope"
        ]

    async def test_a_city_cannot_change_its_provinces_rows_but_the_province_its_citys(
        self, registry, world, holder
    ):
        row = certificate(world["body"], holder["credit_code"])
        await imported(
            registry, world["zj_system"], "certificates", ndjson(row), bureau_id=world["city"]["id"]
        )
        changed = {**row, "scope": "省里改的"}
        batch = await imported(registry, world["zj_system"], "certificates", ndjson(changed))
        assert batch["rows_updated"] == 1
        own = certificate(world["body"], holder["credit_code"])
        await imported(registry, world["zj_system"], "certificates", ndjson(own))
        city = await imported(
            registry, world["city_system"], "certificates", ndjson({**own, "scope": "市里改的"})
        )
        assert types((await row_errors(registry, world["city_system"], city["id"]))[1]) == ["out_of_scope"]

    async def test_imports_are_read_within_scope_only(self, registry, world):
        batch = await imported(registry, world["zj_system"], "enterprises", ndjson(enterprise()))
        missing = await registry.get(f"{IMPORTS}/987654321", headers=auth(world["sd_system"]))
        for path in (f"{IMPORTS}/{batch['id']}", f"{IMPORTS}/{batch['id']}/errors"):
            outside = await registry.get(path, headers=auth(world["sd_system"]))
            assert outside.status_code == 404 and outside.json()["type"] == NOT_FOUND
        assert outside.json()["detail"].replace(str(batch["id"]), "#") == missing.json()["detail"].replace(
            "987654321", "#"
        )
        inside = await registry.get(f"{IMPORTS}/{batch['id']}", headers=auth(world["zj_system"]))
        assert inside.status_code == 200 and inside.json() == batch
        listed = await registry.get(IMPORTS, params={"limit": 500}, headers=auth(world["sd_system"]))
        assert batch["id"] not in [b["id"] for b in listed.json()["items"]]

    @pytest.mark.parametrize("roles", [(Role.ENFORCEMENT,), (Role.LEGAL,), (Role.HEAD,), ()])
    async def test_roles_that_may_not_write(self, registry, token_for, world, roles):
        account = str(uuid.uuid4())
        token = token_for(world["zj"], roles=roles, account_id=account)
        row = enterprise()
        response = await upload(registry, token, "enterprises", ndjson(row))
        assert response.status_code == 403 and response.json()["type"] == "/problems/role-required"
        assert await enterprise_row(registry, credit=row["credit_code"]) is None
        assert (
            await sql(registry, "SELECT count(*) FROM import_batch WHERE account = :a", a=account)
        ).scalar() == 0

    @pytest.mark.parametrize("roles", [(Role.SUPERVISION,), (Role.ADMIN,)])
    async def test_officers_that_may_write(self, registry, token_for, world, roles):
        row = enterprise()
        await imported(registry, token_for(world["zj"], roles=roles), "enterprises", ndjson(row))
        assert (await enterprise_row(registry, credit=row["credit_code"]))["bureau_id"] == world["zj"]["id"]


# --- uploads refused whole --------------------------------------------------------------------


class TestRefusedUploads:
    @pytest.fixture
    def account(self, token_for, world) -> tuple[str, str]:
        """A system account of its own, so "no import was made" is checked on its imports only."""
        account = str(uuid.uuid4())
        return account, token_for(
            world["zj"], roles=(Role.SYSTEM,), kind=PrincipalKind.SYSTEM, account_id=account
        )

    async def imports_of(self, registry, account: str) -> int:
        result = await sql(registry, "SELECT count(*) FROM import_batch WHERE account = :a", a=account)
        return result.scalar()

    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "text/plain", "text/csv; charset=latin-1", "multipart/form-data", None],
    )
    async def test_wrong_content_type(self, registry, account, content_type):
        headers = {**auth(account[1])}
        if content_type:
            headers["Content-Type"] = content_type
        response = await registry.post(
            IMPORTS, params={"kind": "enterprises"}, content=ndjson(enterprise()), headers=headers
        )
        assert response.status_code == 415, response.text
        assert response.json()["type"] == "/problems/unsupported-media-type"
        assert await self.imports_of(registry, account[0]) == 0

    async def test_content_type_with_charset_and_case(self, registry, account):
        body = ndjson(enterprise())
        batch = await imported(
            registry, account[1], "enterprises", body, "Application/X-NDJSON; charset=UTF-8"
        )
        assert batch["rows_written"] == 1

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [(b"", NDJSON), (b"\n\n  \n", NDJSON), (b"", CSV), (b"credit_code,name,division_code\n", CSV)],
    )
    async def test_empty_file(self, registry, account, body, content_type):
        response = await upload(registry, account[1], "enterprises", body, content_type)
        assert response.status_code == 422 and response.json()["type"] == "/problems/empty-import"
        assert await self.imports_of(registry, account[0]) == 0

    async def test_csv_header_missing_a_column(self, registry, account):
        body = csv_text(["credit_code", "division_code"], [credit_code(), "330100"])
        response = await upload(registry, account[1], "enterprises", body, CSV)
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"] == "/problems/csv-header-invalid"
        assert problem["errors"] == [
            {"loc": "header.name", "message": "The column name is required.", "type": "missing_column"}
        ]
        assert await self.imports_of(registry, account[0]) == 0

    async def test_csv_header_with_an_unknown_or_repeated_column(self, registry, account):
        body = csv_text(["credit_code", "name", "name", "division_code", "legal_person"], [])
        response = await upload(registry, account[1], "enterprises", body, CSV)
        assert response.status_code == 422 and response.json()["type"] == "/problems/csv-header-invalid"
        assert {(e["loc"], e["type"]) for e in response.json()["errors"]} == {
            ("header.legal_person", "unknown_column"),
            ("header.name", "duplicate_column"),
        }

    @pytest.mark.parametrize("kind", [None, "bureaus", "ENTERPRISES"])
    async def test_kind_is_required_and_known(self, registry, account, kind):
        params = {"kind": kind} if kind else {}
        response = await registry.post(
            IMPORTS,
            params=params,
            content=ndjson(enterprise()),
            headers={**auth(account[1]), "Content-Type": NDJSON},
        )
        assert response.status_code == 422 and response.json()["type"] == "/problems/validation-error"
        assert response.json()["errors"][0]["loc"] == "query.kind"
        assert await self.imports_of(registry, account[0]) == 0

    async def test_without_a_token(self, registry):
        response = await registry.post(
            IMPORTS, params={"kind": "enterprises"}, content=b"{}", headers={"Content-Type": NDJSON}
        )
        assert response.status_code == 401 and response.json()["type"] == "/problems/unauthorized"


# --- reading imports and their refused rows ---------------------------------------------------


class TestReading:
    async def test_errors_page_by_page_and_as_a_stream(self, registry, world):
        rows = [enterprise(division_code="000000") for _ in range(3)]
        batch = await imported(registry, world["zj_system"], "enterprises", ndjson(enterprise(), *rows))
        url = f"{IMPORTS}/{batch['id']}/errors"
        first = (await registry.get(url, params={"limit": 2}, headers=auth(world["zj_system"]))).json()
        assert [e["row_number"] for e in first["items"]] == [2, 3] and first["next_cursor"]
        second = (
            await registry.get(
                url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth(world["zj_system"])
            )
        ).json()
        assert [e["row_number"] for e in second["items"]] == [4] and second["next_cursor"] is None
        streamed = await registry.get(url, headers={**auth(world["zj_system"]), "Accept": NDJSON})
        assert streamed.status_code == 200 and streamed.headers["content-type"].startswith(NDJSON)
        lines = [orjson.loads(line) for line in streamed.content.splitlines()]
        assert [(line["row_number"], types(line["errors"])) for line in lines] == [
            (n, ["unknown_division"]) for n in (2, 3, 4)
        ]

    async def test_list_newest_first_with_filters(self, registry, token_for, world):
        bureau = await create_bureau(registry, token_for(), world["zj"], "city", "330200")
        token = token_for(bureau, roles=(Role.SYSTEM,), kind=PrincipalKind.SYSTEM)
        enterprises = await imported(registry, token, "enterprises", ndjson(enterprise()))
        products = await imported(
            registry,
            token,
            "products",
            ndjson(
                {"holder_credit_code": credit_code(), "name": "插座", "category_code": "0801", "model": "X"}
            ),
        )
        listed = (await registry.get(IMPORTS, headers=auth(token))).json()
        assert [b["id"] for b in listed["items"]] == [products["id"], enterprises["id"]]
        only = (await registry.get(IMPORTS, params={"kind": "products"}, headers=auth(token))).json()
        assert [b["id"] for b in only["items"]] == [products["id"]]
        paged = (await registry.get(IMPORTS, params={"limit": 1}, headers=auth(token))).json()
        rest = (
            await registry.get(
                IMPORTS, params={"limit": 1, "cursor": paged["next_cursor"]}, headers=auth(token)
            )
        ).json()
        assert [b["id"] for b in paged["items"] + rest["items"]] == [products["id"], enterprises["id"]]
        province = (
            await registry.get(IMPORTS, params={"limit": 500}, headers=auth(world["zj_system"]))
        ).json()
        assert {products["id"], enterprises["id"]} <= {b["id"] for b in province["items"]}

    async def test_unknown_import_and_bad_cursor(self, registry, world):
        missing = await registry.get(f"{IMPORTS}/987654321/errors", headers=auth(world["zj_system"]))
        assert missing.status_code == 404 and missing.json()["type"] == NOT_FOUND
        bad = await registry.get(IMPORTS, params={"cursor": "AAAA"}, headers=auth(world["zj_system"]))
        assert bad.status_code == 422 and bad.json()["type"] == "/problems/validation-error"


# --- a large upload -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def thousand_row_batches(registry):
    from services.registry.app import create_app

    async for client in _app_client(create_app(RegistrySettings(import_batch_rows=1000)), "http://registry"):
        yield client


class TestStreaming:
    async def test_a_large_upload_is_read_as_it_arrives(self, thousand_row_batches, world, holder):
        """100,000 rows (some 20 MB) streamed in chunks: what the upload holds in memory is a
        batch or two of rows (here 1,000 a batch), far below the size of the file."""
        registry = thousand_row_batches
        count = 100_000
        prefix = f"{random.randint(2003, 2025)}{world['body']['ccc_body_code']}{random.randint(0, 9999):04d}"
        line = certificate(world["body"], holder["credit_code"])
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            block = []
            for serial in range(count):
                block.append(orjson.dumps({**line, "number": f"{prefix}{serial:06d}"}) + b"\n")
                if len(block) == 256:
                    chunk = b"".join(block)
                    sent += len(chunk)
                    yield chunk
                    block = []
            chunk = b"".join(block)
            sent += len(chunk)
            yield chunk

        tracemalloc.start()
        try:
            response = await registry.post(
                IMPORTS,
                params={"kind": "certificates"},
                content=body(),
                headers={**auth(world["zj_system"]), "Content-Type": NDJSON},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert response.status_code == 201, response.text
        assert response.json()["rows_written"] == count
        assert peak < sent / 2, f"peak {peak / 2**20:.1f} MiB for a {sent / 2**20:.1f} MiB upload"
        stored = await sql(
            registry,
            "SELECT count(*) FROM certificate WHERE import_id = :i",
            i=response.json()["id"],
        )
        assert stored.scalar() == count

"""The violation catalogue (违法行为目录): seeded from the data files, read, extended by the
national administrator, and the fine range a proposed fine must keep."""

from __future__ import annotations

import csv
import random
from decimal import Decimal
from pathlib import Path

import pytest

from services.common.auth import Role
from services.common.problems import Conflict, UnprocessableEntity
from services.enforcement.catalogue.models import Violation
from services.enforcement.catalogue.service import check_fine, fine_range
from tests.conftest import assert_problem, auth, unique

DATA = Path(__file__).resolve().parents[2] / "services" / "enforcement" / "data"
URL = "/api/v1/enforcement/violations"
CHECKS = "/api/v1/enforcement/penalty-checks"


def catalogue() -> list[dict[str, str]]:
    with (DATA / "violations.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def row_of(code: str) -> dict[str, str]:
    return next(r for r in catalogue() if r["code"] == code)


def money(text: str) -> Decimal | None:
    return Decimal(text).quantize(Decimal("0.01")) if text else None


def province() -> dict:
    pid = random.randrange(10**9, 2 * 10**9)
    return {"id": pid, "path": f"1.{pid}."}


@pytest.fixture(scope="module")
def reader(token_for):
    return auth(token_for(province(), roles=(Role.ENFORCEMENT,)))


@pytest.fixture(scope="module")
def national_admin(token_for):
    return auth(token_for(roles=(Role.ADMIN,)))


def check_body(code: str, amount: str | None = None, **extra) -> dict:
    items = [{"kind": "fine", "amount": amount}] if amount is not None else [{"kind": "warning"}]
    return {"violation": code, "party_kind": "organisation", "items": items, **extra}


class TestSeededCatalogue:
    async def test_every_row_of_the_data_file_is_readable_with_its_range(self, enforcement, reader):
        for row in catalogue():
            resp = await enforcement.get(
                URL, params={"regulation": row["regulation"], "code": row["code"]}, headers=reader
            )
            assert resp.status_code == 200, resp.text
            [item] = resp.json()["items"]
            assert item["article"] == (row["article"] or None)
            assert item["title"] == row["violation"]
            assert (money(item["fine_min"] or ""), money(item["fine_max"] or "")) == (
                money(row["fine_min_yuan"]),
                money(row["fine_max_yuan"]),
            )

    async def test_articles_56_to_72_and_the_fixed_ccc_amounts_are_present(self, enforcement, reader):
        resp = await enforcement.get(
            URL, params={"regulation": "cnca-regulations-2023", "limit": 100}, headers=reader
        )
        articles = {item["article"] for item in resp.json()["items"]}
        expected = {r["article"] for r in catalogue() if r["regulation"] == "cnca-regulations-2023"}
        assert expected <= articles
        assert {"56", "66", "72"} <= articles
        resp = await enforcement.get(
            URL, params={"regulation": "ccc-rules-2022", "limit": 100}, headers=reader
        )
        fixed = {i["code"]: (i["fine_min"], i["fine_max"]) for i in resp.json()["items"]}
        for row in catalogue():
            if row["regulation"] == "ccc-rules-2022":
                assert tuple(map(money, fixed[row["code"]])) == (
                    money(row["fine_min_yuan"]),
                    money(row["fine_max_yuan"]),
                )

    async def test_money_is_a_decimal_string(self, enforcement, reader):
        resp = await enforcement.get(URL, params={"code": "uncertified-ccc-product"}, headers=reader)
        item = resp.json()["items"][0]
        assert item["fine_min"] == f"{money(row_of('uncertified-ccc-product')['fine_min_yuan'])}"
        assert (
            item["goods_value_below"]
            == f"{money(row_of('uncertified-ccc-product')['goods_value_below_yuan'])}"
        )

    async def test_pages_follow_the_cursor_without_repeats(self, enforcement, reader):
        seen: list[int] = []
        params = {"limit": 3, "regulation": "cnca-regulations-2023"}
        while True:
            resp = await enforcement.get(URL, params=params, headers=reader)
            body = resp.json()
            seen += [i["id"] for i in body["items"]]
            if body["next_cursor"] is None:
                break
            params["cursor"] = body["next_cursor"]
        assert len(seen) == len(set(seen)) >= 11
        assert seen == sorted(seen)

    async def test_title_substring_filter(self, enforcement, reader):
        resp = await enforcement.get(URL, params={"q": "CCC CERTIFICATES"}, headers=reader)
        assert [i["code"] for i in resp.json()["items"]] == ["forged-ccc-certificate"]

    async def test_one_violation_and_a_missing_one(self, enforcement, reader):
        listed = (await enforcement.get(URL, params={"code": "procedure-breach"}, headers=reader)).json()[
            "items"
        ][0]
        resp = await enforcement.get(f"{URL}/{listed['id']}", headers=reader)
        assert resp.json() == listed
        assert_problem(
            await enforcement.get(f"{URL}/{2**53 - 1}", headers=reader), 404, "/problems/not-found"
        )

    async def test_reading_needs_a_token(self, enforcement):
        assert_problem(await enforcement.get(URL), 401, "/problems/unauthorized")

    async def test_a_bad_cursor_is_refused(self, enforcement, reader):
        resp = await enforcement.get(URL, params={"cursor": "AAAA"}, headers=reader)
        assert_problem(resp, 422, "/problems/validation-error")


class TestAddViolation:
    def body(self, **overrides) -> dict:
        return {
            "regulation": unique("test-regulation-"),
            "article": "66",
            "code": "uncertified-ccc-product",
            "title": "product sold without certification",
            "fine_min": "50000.00",
            "fine_max": "200000.00",
            "goods_value_below": "10000.00",
            "goods_value_multiple": "2",
            "other_sanctions": "order to correct",
            "in_force_from": "2030-01-01",
            **overrides,
        }

    async def test_the_national_administrator_adds_a_new_text(self, enforcement, national_admin):
        body = self.body()
        resp = await enforcement.post(URL, json=body, headers=national_admin)
        assert resp.status_code == 201, resp.text
        created = resp.json()
        assert created["fine_max"] == "200000.00"
        assert resp.headers["Location"] == f"{URL}/{created['id']}"
        read = await enforcement.get(f"{URL}/{created['id']}", headers=national_admin)
        assert read.json() == created

    async def test_a_code_taken_in_the_same_text_is_a_conflict(self, enforcement, national_admin):
        body = self.body()
        assert (await enforcement.post(URL, json=body, headers=national_admin)).status_code == 201
        resp = await enforcement.post(URL, json=body, headers=national_admin)
        assert_problem(resp, 409, "/problems/violation-exists")

    async def test_a_reversed_range_is_malformed(self, enforcement, national_admin):
        resp = await enforcement.post(
            URL, json=self.body(fine_min="300000", fine_max="200000"), headers=national_admin
        )
        assert_problem(resp, 422, "/problems/validation-error")

    @pytest.mark.parametrize(
        "overrides",
        [
            {"fine_min": "-1"},
            {"fine_max": "1.001"},
            {"goods_value_multiple": None},
            {"code": "Not A Code"},
            {"unexpected": 1},
        ],
    )
    async def test_bad_inputs_are_malformed(self, enforcement, national_admin, overrides):
        body = self.body(**overrides)
        if overrides.get("goods_value_multiple", 0) is None:
            body.pop("goods_value_multiple")
        resp = await enforcement.post(URL, json=body, headers=national_admin)
        assert_problem(resp, 422, "/problems/validation-error")

    async def test_a_provincial_administrator_is_refused(self, enforcement, token_for):
        headers = auth(token_for(province(), roles=(Role.ADMIN,)))
        resp = await enforcement.post(URL, json=self.body(), headers=headers)
        assert_problem(resp, 403, "/problems/role-required")

    async def test_a_national_officer_without_the_admin_role_is_refused(self, enforcement, token_for):
        headers = auth(token_for(roles=(Role.ENFORCEMENT, Role.LEGAL)))
        resp = await enforcement.post(URL, json=self.body(), headers=headers)
        assert_problem(resp, 403, "/problems/role-required")

    async def test_the_newest_text_is_the_one_a_bare_code_names(self, enforcement, national_admin, reader):
        code = unique("code-")
        older = self.body(code=code, in_force_from="2031-01-01", fine_max="1000.00", fine_min="0")
        newer = self.body(code=code, in_force_from="2032-01-01", fine_max="2000.00", fine_min="0")
        for body in (newer, older):  # the older one is added last: the date decides, not the id
            assert (await enforcement.post(URL, json=body, headers=national_admin)).status_code == 201
        resp = await enforcement.post(CHECKS, json=check_body(code, "1500.00"), headers=reader)
        assert resp.status_code == 200, resp.text
        assert resp.json()["violation"]["regulation"] == newer["regulation"]
        resp = await enforcement.post(
            CHECKS, json=check_body(code, "1500.00", regulation=older["regulation"]), headers=reader
        )
        problem = assert_problem(resp, 409, "/problems/fine-outside-range")
        assert problem["fine_max"] == "1000.00"


class TestFineRange:
    @pytest.mark.parametrize("bound", ["fine_min_yuan", "fine_max_yuan"])
    async def test_both_bounds_are_accepted(self, enforcement, reader, bound):
        row = row_of("procedure-breach")
        resp = await enforcement.post(CHECKS, json=check_body(row["code"], row[bound]), headers=reader)
        assert resp.status_code == 200, resp.text
        fine = resp.json()["fine"]
        assert (fine["fine_min"], fine["fine_max"]) == (
            str(money(row["fine_min_yuan"])),
            str(money(row["fine_max_yuan"])),
        )

    async def test_inside_the_range_is_accepted(self, enforcement, reader):
        row = row_of("uncertified-activity")
        middle = (Decimal(row["fine_min_yuan"]) + Decimal(row["fine_max_yuan"])) / 2
        resp = await enforcement.post(CHECKS, json=check_body(row["code"], str(middle)), headers=reader)
        assert resp.status_code == 200, resp.text
        assert Decimal(resp.json()["fine"]["amount"]) == middle

    @pytest.mark.parametrize("offset", [Decimal("-0.01"), Decimal("0.01")])
    async def test_outside_is_refused_with_the_range(self, enforcement, reader, offset):
        row = row_of("procedure-breach")
        amount = money(row["fine_min_yuan"] if offset < 0 else row["fine_max_yuan"]) + offset
        resp = await enforcement.post(CHECKS, json=check_body(row["code"], str(amount)), headers=reader)
        problem = assert_problem(resp, 409, "/problems/fine-outside-range")
        low, high = str(money(row["fine_min_yuan"])), str(money(row["fine_max_yuan"]))
        assert (problem["fine_min"], problem["fine_max"]) == (low, high)
        assert (problem["regulation"], problem["article"], problem["violation"]) == (
            row["regulation"],
            row["article"],
            row["code"],
        )
        assert f"between {low} and {high} yuan" in problem["detail"]

    async def test_a_violation_without_a_fine_refuses_one(self, enforcement, reader):
        row = next(r for r in catalogue() if not r["fine_max_yuan"])
        resp = await enforcement.post(CHECKS, json=check_body(row["code"], "100.00"), headers=reader)
        problem = assert_problem(resp, 409, "/problems/fine-outside-range")
        assert "sets no fine" in problem["detail"]
        assert "fine_min" not in problem and problem["violation"] == row["code"]
        # Without a fine the same violation passes (e.g. a revocation).
        body = check_body(row["code"]) | {"items": [{"kind": "revoke_approval"}]}
        assert (await enforcement.post(CHECKS, json=body, headers=reader)).status_code == 200

    async def test_article_66_cheap_goods_cap_the_fine_at_a_multiple_of_their_value(
        self, enforcement, reader
    ):
        row = row_of("uncertified-ccc-product")
        below, multiple = Decimal(row["goods_value_below_yuan"]), Decimal(row["goods_value_multiple"])
        goods = (below / 4).quantize(Decimal("0.01"))
        cap = (goods * multiple).quantize(Decimal("0.01"))
        ok = await enforcement.post(
            CHECKS, json=check_body(row["code"], str(cap), goods_value=str(goods)), headers=reader
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["fine"] == {"amount": str(cap), "fine_min": "0.00", "fine_max": str(cap)}
        over = cap + Decimal("0.01")
        resp = await enforcement.post(
            CHECKS, json=check_body(row["code"], str(over), goods_value=str(goods)), headers=reader
        )
        problem = assert_problem(resp, 409, "/problems/fine-outside-range")
        assert (problem["fine_min"], problem["fine_max"], problem["goods_value"]) == (
            "0.00",
            str(cap),
            str(goods),
        )

    async def test_article_66_goods_at_the_limit_take_the_ordinary_range(self, enforcement, reader):
        row = row_of("uncertified-ccc-product")
        below = row["goods_value_below_yuan"]
        body = check_body(row["code"], str(money(row["fine_min_yuan"]) - 1), goods_value=below)
        problem = assert_problem(
            await enforcement.post(CHECKS, json=body, headers=reader), 409, "/problems/fine-outside-range"
        )
        assert problem["fine_min"] == str(money(row["fine_min_yuan"]))

    async def test_an_unknown_violation_is_named_at_its_field(self, enforcement, reader):
        resp = await enforcement.post(CHECKS, json=check_body("no-such-violation", "1"), headers=reader)
        problem = assert_problem(resp, 422, "/problems/unknown-violation")
        assert problem["errors"][0]["loc"] == "body.violation"

    @pytest.mark.parametrize(
        "items",
        [
            [{"kind": "fine", "amount": "-1"}],
            [{"kind": "fine", "amount": "1.001"}],
            [{"kind": "fine"}],
            [{"kind": "warning", "amount": "10"}],
            [{"kind": "flogging"}],
            [{"kind": "fine", "amount": "10", "extra": True}],
            [],
        ],
    )
    async def test_bad_items_are_malformed(self, enforcement, reader, items):
        body = check_body("procedure-breach") | {"items": items}
        assert_problem(
            await enforcement.post(CHECKS, json=body, headers=reader), 422, "/problems/validation-error"
        )

    async def test_an_extra_field_is_malformed(self, enforcement, reader):
        body = check_body("procedure-breach", "60000") | {"approved": True}
        assert_problem(
            await enforcement.post(CHECKS, json=body, headers=reader), 422, "/problems/validation-error"
        )


class TestCheckFineFunction:
    """The function other packages call, without the database."""

    violation = Violation(
        regulation="r", article="66", code="c", title="t", fine_min=Decimal("50000.00"),
        fine_max=Decimal("200000.00"), goods_value_below=Decimal("10000.00"),
        goods_value_multiple=Decimal("2.00"), in_force_from="2023-07-20", created_by="test",
    )  # fmt: skip

    def test_in_range_passes_and_outside_raises(self):
        check_fine(self.violation, Decimal("50000.00"))
        check_fine(self.violation, Decimal("200000"))
        with pytest.raises(Conflict) as raised:
            check_fine(self.violation, Decimal("200000.01"))
        assert raised.value.slug == "fine-outside-range"
        assert raised.value.extra["fine_max"] == "200000.00"

    def test_goods_rule_and_bad_amounts(self):
        assert fine_range(self.violation, Decimal("3000")) == (Decimal("0.00"), Decimal("6000.00"))
        check_fine(self.violation, Decimal("6000"), goods_value=Decimal("3000"))
        with pytest.raises(UnprocessableEntity) as raised:
            check_fine(self.violation, Decimal("-1"), loc="body.items.0.amount")
        assert raised.value.extra["errors"][0]["loc"] == "body.items.0.amount"

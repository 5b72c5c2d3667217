"""Thresholds of hearing (听证), legal review (法制审核) and filing (备案), a province's own
rows over the defaults, the simple procedure's limits and the late-payment surcharge."""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from services.common.auth import Role
from services.enforcement.catalogue.service import (
    PenaltyItem,
    PenaltyKind,
    bureau_level_of,
    hearing_check,
    late_payment_surcharge,
    province_of,
    simple_procedure_check,
)
from services.enforcement.models import AuditEntry
from tests.conftest import assert_problem, auth

DATA = Path(__file__).resolve().parents[2] / "services" / "enforcement" / "data"
CHECKS = "/api/v1/enforcement/penalty-checks"
THRESHOLDS = "/api/v1/enforcement/thresholds"
CENT = Decimal("0.01")
# A violation whose range holds every amount the flags are tested at.
WIDE = "uncertified-activity"


def data(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def default_threshold(kind: str, party_kind: str, level: str = "") -> Decimal:
    [row] = [
        r
        for r in data("thresholds.csv")
        if (r["kind"], r["party_kind"], r["province"]) == (kind, party_kind, "default")
        and r["bureau_level"] in ("", level)
    ]
    return Decimal(row["amount_at_least_yuan"])


def rule(key: str) -> Decimal:
    return Decimal(next(r["value"] for r in data("penalty-rules.csv") if r["key"] == key))


def fake_province() -> int:
    return random.randrange(3 * 10**9, 4 * 10**9)


def bureau(*ids: int) -> dict:
    return {"id": ids[-1], "path": "".join(f"{i}." for i in (1, *ids))}


@pytest.fixture(scope="module")
def province_id() -> int:
    return fake_province()


@pytest.fixture(scope="module")
def city_officer(token_for, province_id):
    return auth(token_for(bureau(province_id, province_id + 1), roles=(Role.ENFORCEMENT,)))


@pytest.fixture(scope="module")
def county_officer(token_for, province_id):
    return auth(token_for(bureau(province_id, province_id + 1, province_id + 2), roles=(Role.ENFORCEMENT,)))


@pytest.fixture
async def session(enforcement):
    async with enforcement.app.state.sessionmaker() as session:
        yield session


def fine(amount: Decimal, party_kind: str, **extra) -> dict:
    return {
        "violation": WIDE,
        "party_kind": party_kind,
        "items": [{"kind": "fine", "amount": str(amount)}],
        **extra,
    }


def confiscation(amount: Decimal, party_kind: str, **extra) -> dict:
    # A warning with the confiscation: no fine, so the fine range is not in play.
    items = [{"kind": "warning"}, {"kind": "confiscation", "amount": str(amount)}]
    return {"violation": WIDE, "party_kind": party_kind, "items": items, **extra}


class TestBureauTree:
    def test_level_and_province_from_the_path(self):
        assert (bureau_level_of("1."), province_of("1.")) == ("city_or_above", None)
        assert (bureau_level_of("1.7."), province_of("1.7.")) == ("city_or_above", 7)
        assert (bureau_level_of("1.7.23."), province_of("1.7.23.")) == ("city_or_above", 7)
        assert (bureau_level_of("1.7.23.301."), province_of("1.7.23.301.")) == ("county", 7)


class TestHearing:
    @pytest.mark.parametrize("party_kind", ["natural_person", "organisation"])
    @pytest.mark.parametrize("offset, expected", [(-CENT, False), (Decimal(0), True), (CENT, True)])
    async def test_a_fine_below_at_and_above_the_threshold(
        self, enforcement, city_officer, party_kind, offset, expected
    ):
        threshold = default_threshold("hearing", party_kind)
        body = confiscation(threshold + offset, party_kind)
        resp = await enforcement.post(CHECKS, json=body, headers=city_officer)
        assert resp.status_code == 200, resp.text
        hearing = resp.json()["hearing"]
        assert hearing["required"] is expected, hearing
        assert hearing["thresholds"]["amount_at_least"] == str(threshold.quantize(CENT))
        assert hearing["thresholds"]["source"] == "default"

    async def test_a_fine_at_the_organisation_threshold(self, enforcement, city_officer):
        threshold = default_threshold("hearing", "organisation").quantize(CENT)
        resp = await enforcement.post(CHECKS, json=fine(threshold, "organisation"), headers=city_officer)
        assert resp.json()["hearing"]["reasons"] == [
            f"fine of {threshold} yuan is at least {threshold} yuan (organisation)"
        ]

    async def test_the_natural_person_threshold_does_not_apply_to_an_organisation(
        self, enforcement, city_officer
    ):
        amount = default_threshold("hearing", "natural_person")
        assert amount < default_threshold("hearing", "organisation")
        resp = await enforcement.post(CHECKS, json=confiscation(amount, "organisation"), headers=city_officer)
        assert resp.json()["hearing"]["required"] is False

    @pytest.mark.parametrize("kind", ["order_to_stop", "revoke_certificate", "revoke_approval"])
    async def test_stop_of_business_or_revocation_always_allows_a_hearing(
        self, enforcement, city_officer, kind
    ):
        body = {"violation": WIDE, "party_kind": "natural_person", "items": [{"kind": kind}]}
        hearing = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()["hearing"]
        assert hearing["required"] is True
        assert hearing["reasons"] == [f"the penalty includes {kind}"]

    async def test_a_warning_alone_does_not(self, enforcement, city_officer):
        body = {"violation": WIDE, "party_kind": "natural_person", "items": [{"kind": "warning"}]}
        result = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()
        assert (
            result["hearing"]["required"],
            result["legal_review"]["required"],
            result["filing"]["required"],
        ) == (
            False,
            False,
            False,
        )
        assert result["fine"] is None

    async def test_the_function_other_packages_call(self, session):
        threshold = default_threshold("hearing", "organisation")
        items = [PenaltyItem(PenaltyKind.FINE, threshold)]
        check = await hearing_check(session, province_bureau_id=None, party_kind="organisation", items=items)
        assert check.required and check.thresholds["party_kind"] == "organisation"


class TestLegalReview:
    @pytest.mark.parametrize("party_kind", ["natural_person", "organisation"])
    async def test_at_and_below_the_threshold(self, enforcement, city_officer, party_kind):
        threshold = default_threshold("legal_review", party_kind)
        at = (
            await enforcement.post(CHECKS, json=confiscation(threshold, party_kind), headers=city_officer)
        ).json()
        below = (
            await enforcement.post(
                CHECKS, json=confiscation(threshold - CENT, party_kind), headers=city_officer
            )
        ).json()
        assert (at["legal_review"]["required"], below["legal_review"]["required"]) == (True, False)

    @pytest.mark.parametrize(
        "category", ["major_public_interest", "major_rights_after_hearing", "complex_facts", "other_by_law"]
    )
    async def test_a_category_set_by_the_officer_makes_it_major(self, enforcement, city_officer, category):
        body = confiscation(Decimal(1), "natural_person", categories=[category])
        review = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()["legal_review"]
        assert review["required"] is True and review["reasons"] == [f"circumstance: {category}"]

    async def test_an_unknown_category_is_malformed(self, enforcement, city_officer):
        body = confiscation(Decimal(1), "natural_person", categories=["foreign_related"])
        assert_problem(
            await enforcement.post(CHECKS, json=body, headers=city_officer), 422, "/problems/validation-error"
        )


class TestFiling:
    @pytest.mark.parametrize("party_kind", ["natural_person", "organisation"])
    @pytest.mark.parametrize("level", ["county", "city_or_above"])
    async def test_thresholds_per_level_and_party_kind(self, enforcement, city_officer, party_kind, level):
        threshold = default_threshold("filing", party_kind, level)
        for amount, expected in ((threshold - CENT, False), (threshold, True), (threshold + CENT, True)):
            body = confiscation(amount, party_kind, bureau_level=level)
            filing = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()["filing"]
            assert filing["required"] is expected, (amount, filing)
            assert filing["thresholds"]["bureau_level"] == level

    async def test_the_level_comes_from_the_principals_bureau(
        self, enforcement, city_officer, county_officer
    ):
        county = default_threshold("filing", "organisation", "county")
        assert county < default_threshold("filing", "organisation", "city_or_above")
        body = confiscation(county, "organisation")
        at_county = (await enforcement.post(CHECKS, json=body, headers=county_officer)).json()["filing"]
        at_city = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()["filing"]
        assert (at_county["required"], at_city["required"]) == (True, False)

    @pytest.mark.parametrize(
        "circumstance",
        [
            "assigned_or_supervised_from_above",
            "foreign_related",
            "reconsideration_or_litigation",
            "transferred_to_judicial_organ",
        ],
    )
    async def test_circumstances_always_file(self, enforcement, city_officer, circumstance):
        body = {
            "violation": WIDE,
            "party_kind": "organisation",
            "items": [{"kind": "warning"}],
            "circumstances": [circumstance],
        }
        filing = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()["filing"]
        assert filing["required"] is True and filing["reasons"] == [f"circumstance: {circumstance}"]

    async def test_an_unknown_circumstance_is_malformed(self, enforcement, city_officer):
        body = confiscation(Decimal(1), "organisation", circumstances=["complex_facts"])
        assert_problem(
            await enforcement.post(CHECKS, json=body, headers=city_officer), 422, "/problems/validation-error"
        )

    async def test_an_unknown_party_kind_or_level_is_malformed(self, enforcement, city_officer):
        for body in (
            confiscation(Decimal(1), "robot"),
            confiscation(Decimal(1), "organisation", bureau_level="township"),
        ):
            assert_problem(
                await enforcement.post(CHECKS, json=body, headers=city_officer),
                422,
                "/problems/validation-error",
            )


class TestProvinceThresholds:
    def url(self, kind: str, province: int) -> str:
        return f"{THRESHOLDS}/{kind}/provinces/{province}"

    def rows(self, natural: str, organisation: str, **extra) -> dict:
        return {
            "rows": [
                {"party_kind": "natural_person", "amount_at_least": natural, **extra},
                {"party_kind": "organisation", "amount_at_least": organisation, **extra},
            ]
        }

    async def test_the_provincial_administrator_overrides_the_default(self, enforcement, token_for):
        province = fake_province()
        admin = auth(token_for(bureau(province), roles=(Role.ADMIN,)))
        officer = auth(token_for(bureau(province, province + 5), roles=(Role.ENFORCEMENT,)))
        resp = await enforcement.put(
            self.url("hearing", province),
            json=self.rows("2000", "20000", penalty_kinds=["order_to_stop"]),
            headers=admin,
        )
        assert resp.status_code == 200, resp.text
        assert {(r["party_kind"], r["amount_at_least"], r["source"]) for r in resp.json()} == {
            ("natural_person", "2000.00", "province"),
            ("organisation", "20000.00", "province"),
        }
        # The province's officers now get the province's threshold; another province keeps the default.
        body = confiscation(Decimal(2000), "natural_person")
        own = (await enforcement.post(CHECKS, json=body, headers=officer)).json()["hearing"]
        assert own["required"] is True and own["thresholds"]["source"] == "province"
        other = auth(token_for(bureau(fake_province()), roles=(Role.ENFORCEMENT,)))
        assert (await enforcement.post(CHECKS, json=body, headers=other)).json()["hearing"][
            "required"
        ] is False
        # The merged view: the province's hearing rows, the defaults of the other kinds.
        view = (await enforcement.get(THRESHOLDS, headers=officer)).json()
        assert view["province_bureau_id"] == province
        sources = {(r["kind"], r["party_kind"], r["bureau_level"]): r["source"] for r in view["thresholds"]}
        assert sources[("hearing", "natural_person", None)] == "province"
        assert sources[("filing", "organisation", "county")] == "default"
        assert len(sources) == len(view["thresholds"])
        assert Decimal(view["rules"]["late_payment.daily_rate"]) == rule("late_payment.daily_rate")
        # An empty list returns the province to the defaults.
        resp = await enforcement.put(self.url("hearing", province), json={"rows": []}, headers=admin)
        assert {r["source"] for r in resp.json()} == {"default"}

    async def test_a_level_specific_filing_row_overrides_only_its_level(self, enforcement, token_for):
        province = fake_province()
        admin = auth(token_for(roles=(Role.ADMIN,)))  # the national administrator may set any province
        body = {"rows": [{"bureau_level": "county", "party_kind": "organisation", "amount_at_least": "1000"}]}
        assert (
            await enforcement.put(self.url("filing", province), json=body, headers=admin)
        ).status_code == 200
        county = auth(token_for(bureau(province, province + 1, province + 2), roles=(Role.ENFORCEMENT,)))
        city = auth(token_for(bureau(province, province + 1), roles=(Role.ENFORCEMENT,)))
        check = confiscation(Decimal(1000), "organisation")
        assert (await enforcement.post(CHECKS, json=check, headers=county)).json()["filing"][
            "required"
        ] is True
        assert (await enforcement.post(CHECKS, json=check, headers=city)).json()["filing"][
            "required"
        ] is False

    async def test_the_change_is_audited(self, enforcement, token_for):
        province = fake_province()
        admin = auth(token_for(bureau(province), roles=(Role.ADMIN,)))
        resp = await enforcement.put(
            self.url("legal_review", province), json=self.rows("500", "5000"), headers=admin
        )
        assert resp.status_code == 200
        async with enforcement.app.state.sessionmaker() as session:
            entries = (
                await session.exec(
                    select(AuditEntry.c.action).where(AuditEntry.c.entity_id == f"legal_review:{province}")
                )
            ).all()
        assert [e.action for e in entries] == ["penalty_threshold.changed"]

    async def test_another_provinces_administrator_finds_nothing(self, enforcement, token_for):
        province = fake_province()
        for path in (
            bureau(fake_province()),
            bureau(province, province + 1),
        ):  # another province; a city under it
            admin = auth(token_for(path, roles=(Role.ADMIN,)))
            resp = await enforcement.put(
                self.url("hearing", province), json=self.rows("1", "1"), headers=admin
            )
            assert_problem(resp, 404, "/problems/not-found")

    async def test_a_non_administrator_is_refused(self, enforcement, token_for):
        province = fake_province()
        for roles in ((Role.ENFORCEMENT,), (Role.LEGAL, Role.HEAD)):
            headers = auth(token_for(bureau(province), roles=roles))
            resp = await enforcement.put(
                self.url("hearing", province), json=self.rows("1", "1"), headers=headers
            )
            assert_problem(resp, 403, "/problems/role-required")

    async def test_reading_another_province_is_for_the_national_regulator(self, enforcement, token_for):
        officer = auth(token_for(bureau(fake_province()), roles=(Role.ENFORCEMENT,)))
        resp = await enforcement.get(
            THRESHOLDS, params={"province_bureau_id": fake_province()}, headers=officer
        )
        assert_problem(resp, 404, "/problems/not-found")
        body = confiscation(Decimal(1), "organisation", province_bureau_id=fake_province())
        assert_problem(await enforcement.post(CHECKS, json=body, headers=officer), 404, "/problems/not-found")
        national = auth(token_for(roles=(Role.ENFORCEMENT,)))
        wanted = fake_province()
        resp = await enforcement.get(THRESHOLDS, params={"province_bureau_id": wanted}, headers=national)
        assert resp.json()["province_bureau_id"] == wanted

    @pytest.mark.parametrize(
        "kind, body",
        [
            ("hearing", {"rows": [{"party_kind": "organisation", "amount_at_least": "-1"}]}),
            ("hearing", {"rows": [{"party_kind": "organisation", "amount_at_least": "1", "extra": 1}]}),
            (
                "hearing",
                {
                    "rows": [
                        {"party_kind": "organisation", "amount_at_least": "1", "amount_kinds": ["warning"]}
                    ]
                },
            ),
            (
                "hearing",
                {
                    "rows": [
                        {"party_kind": "organisation", "amount_at_least": "1", "penalty_kinds": ["exile"]}
                    ]
                },
            ),
            (
                "hearing",
                {
                    "rows": [
                        {
                            "party_kind": "organisation",
                            "amount_at_least": "1",
                            "circumstances": ["foreign_related"],
                        }
                    ]
                },
            ),
            ("filing", {"rows": [{"party_kind": "organisation", "amount_at_least": "1"}] * 2}),
            ("sentencing", {"rows": []}),
        ],
    )
    async def test_bad_inputs_are_malformed(self, enforcement, token_for, kind, body):
        province = fake_province()
        admin = auth(token_for(bureau(province), roles=(Role.ADMIN,)))
        resp = await enforcement.put(self.url(kind, province), json=body, headers=admin)
        assert_problem(resp, 422, "/problems/validation-error")


class TestSimpleProcedure:
    @pytest.mark.parametrize("party_kind", ["natural_person", "organisation"])
    async def test_a_fine_up_to_the_limit(self, session, party_kind):
        limit = rule(f"simple_procedure.max_fine.{party_kind}")
        at = await simple_procedure_check(
            session, party_kind=party_kind, items=[PenaltyItem(PenaltyKind.FINE, limit)]
        )
        over = await simple_procedure_check(
            session, party_kind=party_kind, items=[PenaltyItem(PenaltyKind.FINE, limit + CENT)]
        )
        assert (at.required, over.required) == (True, False)
        assert at.thresholds["max_fine"] == str(limit.quantize(CENT))
        assert str(limit.quantize(CENT)) in over.reasons[0]

    async def test_a_warning_yes_a_confiscation_no(self, session):
        warning = await simple_procedure_check(
            session, party_kind="organisation", items=[PenaltyItem(PenaltyKind.WARNING)]
        )
        seized = await simple_procedure_check(
            session, party_kind="organisation", items=[PenaltyItem(PenaltyKind.CONFISCATION, Decimal(1))]
        )
        assert (warning.required, seized.required) == (True, False)

    async def test_reported_by_the_dry_run(self, enforcement, city_officer):
        limit = rule("simple_procedure.max_fine.organisation")
        body = {
            "violation": "misused-marks",
            "party_kind": "organisation",
            "items": [{"kind": "fine", "amount": str(limit)}],
        }
        result = (await enforcement.post(CHECKS, json=body, headers=city_officer)).json()
        assert result["simple_procedure"]["required"] is True


class TestLatePaymentSurcharge:
    due = date(2030, 3, 1)

    async def test_nothing_until_the_day_after_the_deadline(self, session):
        for paid_on in (self.due - timedelta(days=3), self.due):
            assert (
                await late_payment_surcharge(session, fine=Decimal(1000), due=self.due, paid_on=paid_on) == 0
            )

    @pytest.mark.parametrize("days", [1, 2, 10])
    async def test_the_daily_rate_of_the_fine_per_day(self, session, days):
        fine = Decimal("1000.00")
        surcharge = await late_payment_surcharge(
            session, fine=fine, due=self.due, paid_on=self.due + timedelta(days=days)
        )
        assert surcharge == (fine * rule("late_payment.daily_rate") * days).quantize(CENT)

    async def test_capped_at_the_fine(self, session):
        fine = Decimal("1000.00")
        cap = fine * rule("late_payment.cap_multiple")
        for days in (400, 10_000):
            assert (
                await late_payment_surcharge(
                    session, fine=fine, due=self.due, paid_on=self.due + timedelta(days=days)
                )
                == cap
            )

    async def test_rounded_half_up_to_the_fen(self, session):
        surcharge = await late_payment_surcharge(
            session, fine=Decimal("0.50"), due=self.due, paid_on=self.due + timedelta(days=1)
        )
        assert surcharge == Decimal("0.02")  # 0.015 → 0.02

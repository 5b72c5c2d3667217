"""Conflicts of interest officers declare (回避): who declares, what, and who reads them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.dates import today
from services.registry.models import OfficerConflict
from tests.conftest import assert_problem, auth
from tests.factories import audit_entries, chain_of, rows_where
from tests.registry.plan_tasks_factory import plan_network


@pytest.fixture(scope="module")
async def network(registry, token_for):
    return await plan_network(registry, token_for())


@pytest.fixture
async def chain(registry, network):
    return await chain_of(registry, network["unit"])


def url(officer: dict) -> str:
    return f"/api/v1/registry/officers/{officer['id']}/conflicts"


def declaration(subject, subject_type: str = "enterprise", **changes) -> dict:
    return {
        "subject_type": subject_type,
        "subject_id": subject.id,
        "reason": "配偶在该企业担任质量负责人",
        "declared_on": "2026-03-02",
        **changes,
    }


def himself(token_for, network, key: str = "county") -> str:
    return token_for(network[key], roles=("supervision",), officer_id=network["officers"][key]["id"])


class TestDeclareConflict:
    async def test_an_officer_declares_his_own(self, registry, token_for, network, chain):
        officer = network["officers"]["county"]
        response = await registry.post(
            url(officer), json=declaration(chain["enterprise"]), headers=auth(himself(token_for, network))
        )
        assert response.status_code == 201, response.text
        conflict = response.json()
        assert conflict["officer_id"] == officer["id"]
        assert (conflict["subject_type"], conflict["subject_id"], conflict["subject_name"]) == (
            "enterprise",
            chain["enterprise"].id,
            chain["enterprise"].name,
        )
        assert (conflict["reason"], conflict["declared_on"]) == ("配偶在该企业担任质量负责人", "2026-03-02")
        assert response.headers["location"] == f"{url(officer)}/{conflict['id']}"
        read = await registry.get(response.headers["location"], headers=auth(himself(token_for, network)))
        assert read.json() == conflict
        assert [e["action"] for e in await audit_entries(registry, "officer_conflict", conflict["id"])] == [
            "officer_conflict.declared"
        ]

    @pytest.mark.parametrize("kind", ["body", "auditor", "enterprise", "certificate"])
    async def test_every_kind_of_subject(self, registry, token_for, network, chain, kind):
        response = await registry.post(
            url(network["officers"]["city"]),
            json=declaration(chain[kind], kind),
            headers=auth(himself(token_for, network, "city")),
        )
        assert response.status_code == 201, response.text
        expected = chain[kind].number if kind == "certificate" else chain[kind].name
        assert response.json()["subject_name"] == expected

    @pytest.mark.parametrize(("role", "bureau"), [("admin", "unit"), ("supervision", "city")])
    async def test_recorded_for_him_within_scope(self, registry, token_for, network, chain, role, bureau):
        officer = network["officers"]["county"]
        response = await registry.post(
            url(officer),
            json=declaration(chain["enterprise"]),
            headers=auth(token_for(network[bureau], roles=(role,))),
        )
        assert response.status_code == 201, response.text
        listed = await registry.get(url(officer), headers=auth(himself(token_for, network)))
        assert response.json() in listed.json()["items"]

    async def test_a_second_declaration_of_the_subject_is_refused(self, registry, token_for, network, chain):
        token = himself(token_for, network)
        officer = network["officers"]["county"]
        first = await registry.post(url(officer), json=declaration(chain["enterprise"]), headers=auth(token))
        assert first.status_code == 201
        again = await registry.post(url(officer), json=declaration(chain["enterprise"]), headers=auth(token))
        problem = assert_problem(again, 409, "/problems/conflict-already-declared")
        assert problem["conflict_id"] == first.json()["id"]

    async def test_an_unknown_subject_is_a_field_error(self, registry, token_for, network, chain):
        officer = network["officers"]["county"]
        # An enterprise's id, named as a certification body: no body has it (or another one).
        response = await registry.post(
            url(officer),
            json=declaration(chain["enterprise"], "body", subject_id=2**53 - 1),
            headers=auth(himself(token_for, network)),
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
            ("body.subject_id", "subject_not_found")
        ]
        assert (
            await rows_where(registry, OfficerConflict, officer_id=officer["id"], subject_id=2**53 - 1) == 0
        )

    @pytest.mark.parametrize(
        ("changes", "loc", "kind"),
        [
            ({"subject_type": "product"}, "body.subject_type", "enum"),
            ({"subject_id": 0}, "body.subject_id", "greater_than_equal"),
            ({"subject_id": "12"}, "body.subject_id", "value_error"),
            ({"reason": " x "}, "body.reason", "string_too_short"),
            ({"declared_on": "tomorrow"}, "body.declared_on", "date_in_future"),
            ({"recorded_by": "someone"}, "body.recorded_by", "extra_forbidden"),
        ],
    )
    async def test_malformed_declarations(self, registry, token_for, network, chain, changes, loc, kind):
        if changes.get("declared_on") == "tomorrow":
            changes = {"declared_on": str(today() + timedelta(days=1))}
        officer = network["officers"]["county"]
        response = await registry.post(
            url(officer),
            json=declaration(chain["enterprise"], **changes),
            headers=auth(himself(token_for, network)),
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert {(e["loc"], e["type"]) for e in problem["errors"]} == {(loc, kind)}
        assert await rows_where(registry, OfficerConflict, officer_id=officer["id"], reason=" x ") == 0

    async def test_missing_fields(self, registry, token_for, network):
        response = await registry.post(
            url(network["officers"]["county"]), json={}, headers=auth(himself(token_for, network))
        )
        problem = assert_problem(response, 422, "/problems/validation-error")
        assert {e["loc"] for e in problem["errors"]} == {
            "body.subject_type",
            "body.subject_id",
            "body.reason",
            "body.declared_on",
        }

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head", "system"])
    async def test_other_roles_in_scope_are_refused(self, registry, token_for, network, chain, role):
        officer = network["officers"]["county"]
        response = await registry.post(
            url(officer),
            json=declaration(chain["enterprise"]),
            headers=auth(token_for(network["unit"], roles=(role,))),
        )
        assert_problem(response, 403, "/problems/role-required")
        assert (
            await rows_where(
                registry, OfficerConflict, officer_id=officer["id"], subject_id=chain["enterprise"].id
            )
            == 0
        )

    async def test_out_of_scope_reads_as_missing(self, registry, token_for, network, chain):
        officer = network["officers"]["unit"]
        for token in (
            token_for(network["other"], roles=("admin",)),
            token_for(network["city"], roles=("supervision",)),  # below the officer's bureau
            himself(token_for, network, "county"),  # another officer, below
        ):
            response = await registry.post(
                url(officer), json=declaration(chain["enterprise"]), headers=auth(token)
            )
            assert_problem(response, 404, "/problems/not-found")
        missing = await registry.post(
            url({"id": 2**53 - 1}), json=declaration(chain["enterprise"]), headers=auth(token_for())
        )
        assert_problem(missing, 404, "/problems/not-found")
        assert (
            await rows_where(
                registry, OfficerConflict, officer_id=officer["id"], subject_id=chain["enterprise"].id
            )
            == 0
        )

    async def test_without_a_token(self, registry, network, chain):
        response = await registry.post(
            url(network["officers"]["county"]), json=declaration(chain["enterprise"])
        )
        assert_problem(response, 401, "/problems/unauthorized")


class TestListConflicts:
    async def test_listed_in_pages(self, registry, token_for, network):
        officer = network["officers"]["city"]
        token = himself(token_for, network, "city")
        declared = []
        for _ in range(3):
            chain = await chain_of(registry, network["unit"])
            response = await registry.post(
                url(officer), json=declaration(chain["auditor"], "auditor"), headers=auth(token)
            )
            declared.append(response.json()["id"])
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await registry.get(url(officer), params=params, headers=auth(token))).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [i for i in seen if i in declared] == declared
        assert seen == sorted(seen)

    async def test_out_of_scope_and_roles(self, registry, token_for, network):
        officer = network["officers"]["city"]
        outsider = await registry.get(
            url(officer), headers=auth(token_for(network["other"], roles=("admin",)))
        )
        assert_problem(outsider, 404, "/problems/not-found")
        enforcement = await registry.get(
            url(officer), headers=auth(token_for(network["unit"], roles=("enforcement",)))
        )
        assert_problem(enforcement, 403, "/problems/role-required")
        other_conflict = await registry.get(
            f"{url(officer)}/{2**53 - 1}", headers=auth(himself(token_for, network, "city"))
        )
        assert_problem(other_conflict, 404, "/problems/not-found")

"""Certification personnel (认证人员): registration, one body at a time, the revocation bar."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from services.registry.certification import repository as certification_repo
from services.registry.certification import rules
from tests.conftest import auth
from tests.factories import (
    affiliate,
    audit_entries,
    create_auditor,
    create_certification_body,
    registration_number,
    same_problem,
    two_provinces,
    unique,
)

AUDITORS = "/api/v1/registry/auditors"


@pytest.fixture(scope="module")
async def places(registry, token_for):
    return await two_provinces(registry, token_for())


@pytest.fixture
def writer(token_for, places):
    return token_for(places["home"], roles=("supervision",))


@pytest.fixture
async def body(registry, writer):
    return await create_certification_body(registry, writer)


def days_ago(n: int) -> str:
    return (rules.today() - timedelta(days=n)).isoformat()


async def read(registry, token: str, auditor: dict) -> dict:
    response = await registry.get(f"{AUDITORS}/{auditor['id']}", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


async def history(registry, token: str, auditor: dict) -> list[dict]:
    response = await registry.get(f"{AUDITORS}/{auditor['id']}/affiliations", headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def patch(registry, token: str, auditor: dict, change: dict, version: int = 1) -> httpx.Response:
    return await registry.patch(
        f"{AUDITORS}/{auditor['id']}", json=change, headers={**auth(token), "If-Match": f'"{version}"'}
    )


async def revoked_auditor(registry, token: str, on: str) -> dict:
    auditor = await create_auditor(registry, token)
    response = await patch(registry, token, auditor, {"status": "revoked", "status_changed_on": on})
    assert response.status_code == 200, response.text
    return response.json()


async def by_registration(registry, token: str, number: str) -> list[dict]:
    response = await registry.get(AUDITORS, params={"registration_number": number}, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]


class TestCreateAuditor:
    async def test_an_auditor_is_registered_by_number(self, registry, writer, places):
        number = registration_number()
        response = await registry.post(
            AUDITORS,
            json={
                "registration_number": f" {number.lower()} ",
                "name": "王审核",
                "qualifications": ["qms", "qms"],
            },
            headers=auth(writer),
        )
        assert response.status_code == 201, response.text
        auditor = response.json()
        assert auditor["registration_number"] == number
        assert auditor["qualifications"] == ["qms"]
        assert (auditor["status"], auditor["current_affiliation"], auditor["barred_until"]) == (
            "registered",
            None,
            None,
        )
        assert auditor["bureau_path"] == places["home"]["path"]
        assert response.headers["location"] == f"{AUDITORS}/{auditor['id']}"
        assert response.headers["etag"] == '"1"'
        entries = await audit_entries(registry, "auditor", auditor["id"])
        assert [e["action"] for e in entries] == ["auditor.created"]

    async def test_a_taken_registration_number_is_refused(self, registry, writer):
        first = await create_auditor(registry, writer)
        response = await registry.post(
            AUDITORS,
            json={"registration_number": first["registration_number"], "name": unique("李")[:10]},
            headers=auth(writer),
        )
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/registration-number-taken"
        assert problem["existing_id"] == first["id"]
        assert [a["id"] for a in await by_registration(registry, writer, first["registration_number"])] == [
            first["id"]
        ]

    async def test_a_revoked_auditor_cannot_register_again_within_five_years(self, registry, writer):
        revoked = await revoked_auditor(registry, writer, days_ago(30))
        response = await registry.post(
            AUDITORS,
            json={"registration_number": revoked["registration_number"], "name": unique("再")[:10]},
            headers=auth(writer),
        )
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/auditor-barred"
        assert problem["barred_until"] == revoked["barred_until"]

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_other_roles_are_refused(self, registry, token_for, places, role):
        number = registration_number()
        response = await registry.post(
            AUDITORS,
            json={"registration_number": number, "name": "张三"},
            headers=auth(token_for(places["home"], roles=(role,))),
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await by_registration(registry, token_for(), number) == []

    async def test_a_bureau_outside_scope_is_not_found(self, registry, writer, places):
        number = registration_number()
        response = await registry.post(
            AUDITORS,
            json={"registration_number": number, "name": "张三", "bureau_id": places["away"]["id"]},
            headers=auth(writer),
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await by_registration(registry, writer, number) == []

    @pytest.mark.parametrize(
        "change",
        [
            {"registration_number": "AB"},
            {"registration_number": "2016 N1 QMS"},
            {"name": "张"},
            {"qualifications": [""]},
            {"status": "revoked"},
        ],
    )
    async def test_malformed_fields_are_refused(self, registry, writer, change):
        payload = {"registration_number": registration_number(), "name": "张三", **change}
        response = await registry.post(AUDITORS, json=payload, headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"


class TestReadAndListAuditors:
    async def test_any_principal_reads_an_auditor(self, registry, writer, token_for, places):
        auditor = await create_auditor(registry, writer)
        response = await registry.get(
            f"{AUDITORS}/{auditor['id']}", headers=auth(token_for(places["away"], roles=("legal",)))
        )
        assert response.status_code == 200
        assert response.json() == auditor
        assert response.headers["etag"] == '"1"'

    async def test_a_missing_auditor_is_not_found(self, registry, token_for):
        response = await registry.get(f"{AUDITORS}/{2**52}", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    async def test_filters_by_current_body_status_and_name(self, registry, writer, token_for, body):
        marker = unique("筛选")[:12]
        practising = await create_auditor(registry, writer, name=f"{marker}甲")
        idle = await create_auditor(registry, writer, name=f"{marker}乙")
        revoked = await create_auditor(registry, writer, name=f"{marker}丙")
        await affiliate(registry, writer, practising, body)
        await patch(registry, writer, revoked, {"status": "revoked"})

        async def ids(**params) -> list[int]:
            response = await registry.get(AUDITORS, params={"q": marker, **params}, headers=auth(token_for()))
            assert response.status_code == 200, response.text
            return [a["id"] for a in response.json()["items"]]

        assert await ids() == [practising["id"], idle["id"], revoked["id"]]
        assert await ids(body_id=body["id"]) == [practising["id"]]
        assert await ids(status="revoked") == [revoked["id"]]
        assert await ids(status="registered", limit=1) == [practising["id"]]


class TestUpdateAuditor:
    async def test_a_change_with_if_match_makes_a_new_version(self, registry, writer):
        auditor = await create_auditor(registry, writer)
        response = await patch(registry, writer, auditor, {"name": "新名字", "qualifications": ["ems"]})
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["name"], changed["qualifications"], changed["version"]) == ("新名字", ["ems"], 2)
        assert response.headers["etag"] == '"2"'

    async def test_revoking_ends_the_affiliation_and_starts_the_bar(self, registry, writer, body):
        auditor = await create_auditor(registry, writer)
        affiliation = await affiliate(registry, writer, auditor, body, rules.today() - timedelta(days=100))
        on = days_ago(10)
        response = await patch(
            registry, writer, auditor, {"status": "revoked", "status_changed_on": on}, version=2
        )
        assert response.status_code == 200, response.text
        revoked = response.json()
        assert (revoked["status"], revoked["status_changed_on"]) == ("revoked", on)
        assert revoked["barred_until"] == rules.barred_until(rules.today() - timedelta(days=10)).isoformat()
        assert revoked["current_affiliation"] is None
        [ended] = await history(registry, writer, auditor)
        assert (ended["id"], ended["ended_on"]) == (affiliation["id"], on)

    async def test_the_bar_is_the_rules_data(self):
        assert (rules.AUDITOR_REVOCATION_BAR.value, rules.AUDITOR_REVOCATION_BAR.unit) == (5, "years")

    async def test_registering_again_within_the_bar_is_refused(self, registry, writer):
        revoked = await revoked_auditor(registry, writer, days_ago(4 * 365))
        response = await patch(registry, writer, revoked, {"status": "registered"}, version=2)
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/auditor-barred"
        assert (await read(registry, writer, revoked))["status"] == "revoked"

    async def test_registering_again_after_the_bar_is_allowed(self, registry, writer):
        revoked = await revoked_auditor(registry, writer, days_ago(5 * 366))
        response = await patch(registry, writer, revoked, {"status": "registered"}, version=2)
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["barred_until"]) == ("registered", None)

    async def test_a_revoked_auditor_is_not_suspended(self, registry, writer):
        revoked = await revoked_auditor(registry, writer, days_ago(1))
        response = await patch(registry, writer, revoked, {"status": "suspended"}, version=2)
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/invalid-transition"
        assert problem["allowed"] == ["registered"]

    async def test_a_status_change_dated_in_the_future_is_refused(self, registry, writer):
        auditor = await create_auditor(registry, writer)
        tomorrow = (rules.today() + timedelta(days=1)).isoformat()
        response = await patch(
            registry, writer, auditor, {"status": "suspended", "status_changed_on": tomorrow}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.status_changed_on"
        assert (await read(registry, writer, auditor)) == auditor

    @pytest.mark.parametrize("day", [0, "20260101", "1899-12-31"])
    async def test_a_malformed_status_date_is_refused(self, registry, writer, day):
        auditor = await create_auditor(registry, writer)
        response = await patch(registry, writer, auditor, {"status": "revoked", "status_changed_on": day})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.status_changed_on"
        assert (await read(registry, writer, auditor)) == auditor

    async def test_a_date_without_a_status_change_is_refused(self, registry, writer):
        auditor = await create_auditor(registry, writer)
        response = await patch(registry, writer, auditor, {"status_changed_on": days_ago(1)})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.status_changed_on"

    async def test_a_stale_if_match_is_refused(self, registry, writer):
        auditor = await create_auditor(registry, writer)
        assert (await patch(registry, writer, auditor, {"name": "第一改"})).status_code == 200
        response = await patch(registry, writer, auditor, {"name": "第二改"})
        assert response.status_code == 412
        assert response.json()["type"] == "/problems/precondition-failed"
        assert (await read(registry, writer, auditor))["name"] == "第一改"

    async def test_a_missing_if_match_is_refused(self, registry, writer):
        auditor = await create_auditor(registry, writer)
        response = await registry.patch(
            f"{AUDITORS}/{auditor['id']}", json={"name": "改名"}, headers=auth(writer)
        )
        assert response.status_code == 428
        assert response.json()["type"] == "/problems/precondition-required"
        assert (await read(registry, writer, auditor)) == auditor

    async def test_an_auditor_outside_scope_is_not_found_like_a_missing_one(
        self, registry, writer, token_for, places
    ):
        auditor = await create_auditor(registry, writer)
        outsider = token_for(places["away"], roles=("supervision",))
        outside = await patch(registry, outsider, auditor, {"name": "改名"})
        missing = await patch(registry, outsider, {"id": 2**52}, {"name": "改名"})
        assert outside.status_code == missing.status_code == 404
        assert same_problem(outside.json(), auditor["id"]) == same_problem(missing.json(), 2**52)
        assert (await read(registry, writer, auditor)) == auditor

    async def test_a_legal_officer_is_refused(self, registry, writer, token_for, places):
        auditor = await create_auditor(registry, writer)
        response = await patch(
            registry, token_for(places["home"], roles=("legal",)), auditor, {"name": "改名"}
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"


class TestAffiliations:
    async def test_an_auditor_practises_in_a_body(self, registry, writer, body):
        auditor = await create_auditor(registry, writer)
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(3)},
            headers=auth(writer),
        )
        assert response.status_code == 201, response.text
        affiliation = response.json()
        assert (affiliation["body_id"], affiliation["started_on"], affiliation["ended_on"]) == (
            body["id"],
            days_ago(3),
            None,
        )
        location = response.headers["location"]
        assert location == f"{AUDITORS}/{auditor['id']}/affiliations/{affiliation['id']}"
        assert response.headers["etag"] == '"2"'
        assert (await registry.get(location, headers=auth(writer))).json() == affiliation
        current = await read(registry, writer, auditor)
        assert (current["current_affiliation"], current["version"]) == (affiliation, 2)
        entries = await audit_entries(registry, "auditor", auditor["id"])
        assert [(e["action"], e["data"].get("affiliation_id")) for e in entries] == [
            ("auditor.created", None),
            ("auditor.affiliated", affiliation["id"]),
        ]

    async def test_a_second_concurrent_affiliation_is_refused(self, registry, writer, body):
        other = await create_certification_body(registry, writer)
        auditor = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body)
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": other["id"], "started_on": days_ago(0)},
            headers=auth(writer),
        )
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/auditor-already-affiliated"
        assert (problem["current_affiliation_id"], problem["current_body_id"]) == (first["id"], body["id"])
        assert await history(registry, writer, auditor) == [first]

    async def test_two_affiliations_at_once_one_succeeds(self, registry, writer):
        bodies = [await create_certification_body(registry, writer) for _ in range(2)]
        transport = httpx.ASGITransport(app=registry.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
            for _ in range(2):  # two rounds, so the race is all but certain to be hit
                auditor = await create_auditor(registry, writer)
                responses = await asyncio.gather(
                    *(
                        client.post(
                            f"{AUDITORS}/{auditor['id']}/affiliations",
                            json={"body_id": b["id"], "started_on": days_ago(0)},
                            headers=auth(writer),
                        )
                        for b in bodies * 3
                    )
                )
                statuses = sorted(r.status_code for r in responses)
                assert statuses == [201] + [409] * 5, [r.text for r in responses]
                assert {r.json()["type"] for r in responses if r.status_code == 409} == {
                    "/problems/auditor-already-affiliated"
                }
                assert len(await history(registry, writer, auditor)) == 1

    async def test_the_index_holds_when_the_check_is_raced_past(self, registry, writer, body, monkeypatch):
        """The check found no open affiliation (another request's was not yet committed): the
        partial unique index refuses the insert, answered as the same rule."""
        auditor = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body)

        async def none_open(session, auditor_id):
            return None

        monkeypatch.setattr(certification_repo, "current_affiliation", none_open)
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(0)},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/auditor-already-affiliated"
        monkeypatch.undo()
        assert await history(registry, writer, auditor) == [first]

    async def test_an_ended_affiliation_frees_the_auditor(self, registry, writer, body):
        other = await create_certification_body(registry, writer)
        auditor = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body, rules.today() - timedelta(days=30))
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations/{first['id']}/end",
            json={"ended_on": days_ago(10)},
            headers=auth(writer),
        )
        assert response.status_code == 200, response.text
        assert response.json() == {**first, "ended_on": days_ago(10)}
        assert response.headers["etag"] == '"3"'
        entries = await audit_entries(registry, "auditor", auditor["id"])
        assert [(e["action"], e["data"].get("affiliation_id")) for e in entries] == [
            ("auditor.created", None),
            ("auditor.affiliated", first["id"]),
            ("auditor.affiliation_ended", first["id"]),
        ]
        assert (await read(registry, writer, auditor))["current_affiliation"] is None
        second = await affiliate(registry, writer, auditor, other, rules.today() - timedelta(days=9))
        assert [a["id"] for a in await history(registry, writer, auditor)] == [first["id"], second["id"]]

    async def test_a_new_affiliation_cannot_overlap_the_last(self, registry, writer, body):
        auditor = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body, rules.today() - timedelta(days=30))
        await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations/{first['id']}/end",
            json={"ended_on": days_ago(10)},
            headers=auth(writer),
        )
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(10)},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/affiliation-overlaps"
        assert len(await history(registry, writer, auditor)) == 1

    async def test_an_affiliation_ends_once(self, registry, writer, body):
        auditor = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body, rules.today() - timedelta(days=5))
        url = f"{AUDITORS}/{auditor['id']}/affiliations/{first['id']}/end"
        assert (
            await registry.post(url, json={"ended_on": days_ago(1)}, headers=auth(writer))
        ).status_code == 200
        response = await registry.post(url, json={"ended_on": days_ago(0)}, headers=auth(writer))
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/affiliation-ended"
        assert (await history(registry, writer, auditor))[0]["ended_on"] == days_ago(1)

    @pytest.mark.parametrize("ended", [6, -1])
    async def test_an_end_before_the_start_or_in_the_future_is_refused(self, registry, writer, body, ended):
        auditor = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body, rules.today() - timedelta(days=5))
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations/{first['id']}/end",
            json={"ended_on": days_ago(ended)},
            headers=auth(writer),
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.ended_on"
        assert await history(registry, writer, auditor) == [first]

    async def test_the_affiliation_of_another_auditor_is_not_found(self, registry, writer, body):
        auditor = await create_auditor(registry, writer)
        other = await create_auditor(registry, writer)
        first = await affiliate(registry, writer, auditor, body)
        response = await registry.post(
            f"{AUDITORS}/{other['id']}/affiliations/{first['id']}/end",
            json={"ended_on": days_ago(0)},
            headers=auth(writer),
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await history(registry, writer, auditor) == [first]

    async def test_a_revoked_auditor_is_barred_from_practising(self, registry, writer, body):
        revoked = await revoked_auditor(registry, writer, days_ago(1))
        response = await registry.post(
            f"{AUDITORS}/{revoked['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(0)},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/auditor-barred"
        assert await history(registry, writer, revoked) == []

    async def test_a_suspended_auditor_does_not_practise(self, registry, writer, body):
        auditor = await create_auditor(registry, writer)
        await patch(registry, writer, auditor, {"status": "suspended"})
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(0)},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/auditor-not-registered"

    async def test_a_suspended_body_takes_no_personnel(self, registry, writer):
        suspended = await create_certification_body(registry, writer, status="suspended")
        auditor = await create_auditor(registry, writer)
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": suspended["id"], "started_on": days_ago(0)},
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/body-not-approved"
        assert await history(registry, writer, auditor) == []

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            ({"body_id": 2**52, "started_on": "2026-01-05"}, "body.body_id"),
            ({"body_id": 1, "started_on": "2999-01-05"}, "body.started_on"),
        ],
    )
    async def test_a_missing_body_or_a_future_start_is_refused(self, registry, writer, payload, loc):
        auditor = await create_auditor(registry, writer)
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations", json=payload, headers=auth(writer)
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == loc
        assert await history(registry, writer, auditor) == []

    async def test_an_auditor_outside_scope_is_not_found(self, registry, writer, token_for, places, body):
        auditor = await create_auditor(registry, writer)
        outsider = token_for(places["away"], roles=("supervision",))
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(0)},
            headers=auth(outsider),
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await history(registry, writer, auditor) == []

    async def test_an_enforcement_officer_is_refused(self, registry, writer, token_for, places, body):
        auditor = await create_auditor(registry, writer)
        response = await registry.post(
            f"{AUDITORS}/{auditor['id']}/affiliations",
            json={"body_id": body["id"], "started_on": days_ago(0)},
            headers=auth(token_for(places["home"], roles=("enforcement",))),
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await history(registry, writer, auditor) == []

    async def test_the_history_of_a_missing_auditor_is_not_found(self, registry, token_for):
        response = await registry.get(f"{AUDITORS}/{2**52}/affiliations", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

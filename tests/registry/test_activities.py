"""Certification activities (认证活动): who (the body and its practising auditors), when, what
result; append-only; a surveillance moves its certificate's last surveillance day."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.registry.certification import rules
from services.registry.models import Certificate
from tests.conftest import auth
from tests.factories import (
    affiliate,
    audit_entries,
    create_auditor,
    create_certification_body,
    create_enterprise,
    credit_code,
    fetch_row,
    insert_certificate,
    legacy_enterprise,
    org_code,
    record_activity,
    two_provinces,
)

ACTIVITIES = "/api/v1/registry/certification-activities"


@pytest.fixture(scope="module")
async def places(registry, token_for):
    return await two_provinces(registry, token_for())


@pytest.fixture
def writer(token_for, places):
    return token_for(places["home"], roles=("supervision",))


@pytest.fixture
async def chain(registry, writer):
    """A body with two practising auditors, a holder and its certificate."""
    body = await create_certification_body(registry, writer)
    auditors = [await create_auditor(registry, writer) for _ in range(2)]
    for auditor in auditors:
        await affiliate(registry, writer, auditor, body, rules.today() - timedelta(days=60))
    holder = await create_enterprise(registry, writer)
    certificate = await insert_certificate(registry, body, holder)
    return {"body": body, "auditors": auditors, "holder": holder, "certificate": certificate}


def days_ago(n: int) -> str:
    return (rules.today() - timedelta(days=n)).isoformat()


def payload(chain: dict, **extra) -> dict:
    return {
        "kind": "audit",
        "body_id": chain["body"]["id"],
        "holder_id": chain["holder"]["id"],
        "auditor_ids": [a["id"] for a in chain["auditors"]],
        "performed_on": days_ago(1),
        "result": "conforming",
        **extra,
    }


async def activities_of(registry, token: str, holder: dict, **params) -> list[dict]:
    response = await registry.get(
        ACTIVITIES, params={"holder_id": holder["id"], **params}, headers=auth(token)
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


class TestRecordActivity:
    async def test_an_audit_is_recorded_with_its_auditors(self, registry, token_for, places, chain):
        principal = token_for(places["home"], roles=("supervision",), account_id="officer-zj-17")
        response = await registry.post(
            ACTIVITIES, json=payload(chain, notes="初次审核"), headers=auth(principal)
        )
        assert response.status_code == 201, response.text
        activity = response.json()
        assert activity["auditor_ids"] == [a["id"] for a in chain["auditors"]]
        assert (activity["kind"], activity["result"], activity["performed_on"]) == (
            "audit",
            "conforming",
            days_ago(1),
        )
        assert (activity["recorded_by"], activity["bureau_id"]) == ("officer-zj-17", places["home"]["id"])
        assert response.headers["location"] == f"{ACTIVITIES}/{activity['id']}"
        assert response.headers["etag"] == '"1"'
        entries = await audit_entries(registry, "certification_activity", activity["id"])
        assert [e["action"] for e in entries] == ["certification_activity.recorded"]

    async def test_a_surveillance_moves_the_certificates_last_surveillance_day(self, registry, writer, chain):
        certificate = chain["certificate"]
        activity = await record_activity(
            registry,
            writer,
            chain["body"],
            chain["holder"],
            kind="surveillance",
            certificate_id=certificate["id"],
            performed_on=days_ago(5),
        )
        surveilled = await fetch_row(registry, Certificate, certificate["id"])
        assert surveilled["last_surveillance_on"].isoformat() == days_ago(5)
        assert surveilled["version"] == certificate["version"] + 1
        recorded = await audit_entries(registry, "certification_activity", activity["id"])
        assert [e["action"] for e in recorded] == ["certification_activity.recorded"]
        surveillances = await audit_entries(registry, "certificate", certificate["id"])
        assert [(e["action"], e["data"]["activity_id"]) for e in surveillances] == [
            ("certificate.surveilled", activity["id"])
        ]
        # An earlier surveillance recorded late does not move the day back.
        await record_activity(
            registry,
            writer,
            chain["body"],
            chain["holder"],
            kind="surveillance",
            certificate_id=certificate["id"],
            performed_on=days_ago(9),
        )
        unchanged = await fetch_row(registry, Certificate, certificate["id"])
        assert (unchanged["last_surveillance_on"].isoformat(), unchanged["version"]) == (
            days_ago(5),
            surveilled["version"],
        )
        assert len(await audit_entries(registry, "certificate", certificate["id"])) == 1

    async def test_an_audit_leaves_the_certificate_alone(self, registry, writer, chain):
        certificate = chain["certificate"]
        await record_activity(
            registry, writer, chain["body"], chain["holder"], certificate_id=certificate["id"]
        )
        assert await fetch_row(registry, Certificate, certificate["id"]) == certificate

    async def test_a_surveillance_names_its_certificate(self, registry, writer, chain):
        response = await registry.post(
            ACTIVITIES, json=payload(chain, kind="surveillance"), headers=auth(writer)
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == "body.certificate_id"
        assert await activities_of(registry, writer, chain["holder"]) == []

    async def test_an_auditor_not_practising_in_the_body_is_refused(self, registry, writer, chain):
        stranger = await create_auditor(registry, writer)
        elsewhere = await create_auditor(registry, writer)
        await affiliate(registry, writer, elsewhere, await create_certification_body(registry, writer))
        ids = [chain["auditors"][0]["id"], stranger["id"], elsewhere["id"]]
        response = await registry.post(ACTIVITIES, json=payload(chain, auditor_ids=ids), headers=auth(writer))
        assert response.status_code == 409
        problem = response.json()
        assert problem["type"] == "/problems/auditor-not-affiliated"
        assert problem["auditor_ids"] == [stranger["id"], elsewhere["id"]]
        assert await activities_of(registry, writer, chain["holder"]) == []

    async def test_auditors_count_on_the_day_they_practised(self, registry, writer, chain):
        auditor = await create_auditor(registry, writer)
        period = await affiliate(registry, writer, auditor, chain["body"], rules.today() - timedelta(days=30))
        await registry.post(
            f"/api/v1/registry/auditors/{auditor['id']}/affiliations/{period['id']}/end",
            json={"ended_on": days_ago(10)},
            headers=auth(writer),
        )
        during = await record_activity(
            registry,
            writer,
            chain["body"],
            chain["holder"],
            auditor_ids=[auditor["id"]],
            performed_on=days_ago(20),
        )
        assert during["auditor_ids"] == [auditor["id"]]
        for day in (days_ago(5), days_ago(31)):
            response = await registry.post(
                ACTIVITIES,
                json=payload(chain, auditor_ids=[auditor["id"]], performed_on=day),
                headers=auth(writer),
            )
            assert response.status_code == 409
            assert response.json()["type"] == "/problems/auditor-not-affiliated"
        assert [a["id"] for a in await activities_of(registry, writer, chain["holder"])] == [during["id"]]

    async def test_a_certificate_of_another_holder_is_refused(self, registry, writer, chain):
        other = await insert_certificate(registry, chain["body"], await create_enterprise(registry, writer))
        response = await registry.post(
            ACTIVITIES, json=payload(chain, certificate_id=other["id"]), headers=auth(writer)
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/activity-certificate-mismatch"
        assert await activities_of(registry, writer, chain["holder"]) == []

    async def test_a_revoked_certificate_is_not_surveilled(self, registry, writer, chain):
        revoked = await insert_certificate(registry, chain["body"], chain["holder"], status="revoked")
        response = await registry.post(
            ACTIVITIES,
            json=payload(chain, kind="surveillance", certificate_id=revoked["id"]),
            headers=auth(writer),
        )
        assert response.status_code == 409
        assert response.json()["type"] == "/problems/certificate-not-active"
        assert (await fetch_row(registry, Certificate, revoked["id"]))["last_surveillance_on"] is None

    async def test_a_merged_holder_is_refused_naming_the_survivor(self, registry, writer, places, chain):
        older = await create_enterprise(registry, writer, credit_code=None, org_code=org_code())
        newer = await legacy_enterprise(
            registry, places["home"], credit_code=credit_code(org=older["org_code"])
        )
        await registry.post(
            f"/api/v1/registry/enterprises/{newer['id']}/merge",
            json={"duplicate_id": older["id"]},
            headers=auth(writer),
        )
        response = await registry.post(
            ACTIVITIES, json=payload(chain, holder_id=older["id"]), headers=auth(writer)
        )
        assert response.status_code == 409
        assert (response.json()["type"], response.json()["survivor_id"]) == (
            "/problems/enterprise-merged",
            newer["id"],
        )

    @pytest.mark.parametrize(
        ("change", "loc"),
        [
            ({"performed_on": (rules.today() + timedelta(days=2)).isoformat()}, "body.performed_on"),
            ({"kind": "decision", "result": "conforming"}, "body.result"),
            ({"kind": "application", "result": "granted"}, "body.result"),
            ({"body_id": 2**52}, "body.body_id"),
            ({"holder_id": 2**52}, "body.holder_id"),
            ({"certificate_id": 2**52}, "body.certificate_id"),
            ({"auditor_ids": [2**52]}, "body.auditor_ids"),
        ],
    )
    async def test_bad_facts_are_refused_naming_the_field(self, registry, writer, chain, change, loc):
        response = await registry.post(ACTIVITIES, json=payload(chain, **change), headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == loc
        assert await activities_of(registry, writer, chain["holder"]) == []

    @pytest.mark.parametrize(
        "change",
        [
            {"kind": "inspection"},
            {"result": "ok"},
            {"auditor_ids": ["1"]},
            {"notes": "x" * 2001},
            {"recorded_by": "me"},
        ],
    )
    async def test_malformed_fields_are_refused(self, registry, writer, chain, change):
        response = await registry.post(ACTIVITIES, json=payload(chain, **change), headers=auth(writer))
        assert response.status_code == 422
        assert response.json()["type"] == "/problems/validation-error"
        assert await activities_of(registry, writer, chain["holder"]) == []

    @pytest.mark.parametrize("role", ["enforcement", "legal", "head"])
    async def test_other_roles_are_refused(self, registry, token_for, places, chain, role):
        response = await registry.post(
            ACTIVITIES, json=payload(chain), headers=auth(token_for(places["home"], roles=(role,)))
        )
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert await activities_of(registry, token_for(), chain["holder"]) == []

    async def test_a_bureau_outside_scope_is_not_found(self, registry, writer, places, chain):
        response = await registry.post(
            ACTIVITIES, json=payload(chain, bureau_id=places["away"]["id"]), headers=auth(writer)
        )
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"
        assert await activities_of(registry, writer, chain["holder"]) == []


class TestActivitiesAreARecord:
    async def test_any_principal_reads_an_activity(self, registry, writer, token_for, places, chain):
        activity = await record_activity(registry, writer, chain["body"], chain["holder"])
        response = await registry.get(
            f"{ACTIVITIES}/{activity['id']}", headers=auth(token_for(places["away"], roles=("legal",)))
        )
        assert response.status_code == 200
        assert response.json() == activity

    async def test_a_missing_activity_is_not_found(self, registry, token_for):
        response = await registry.get(f"{ACTIVITIES}/{2**52}", headers=auth(token_for()))
        assert response.status_code == 404
        assert response.json()["type"] == "/problems/not-found"

    @pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
    async def test_an_activity_is_never_changed(self, registry, writer, chain, method):
        activity = await record_activity(registry, writer, chain["body"], chain["holder"])
        response = await registry.request(
            method, f"{ACTIVITIES}/{activity['id']}", json={"result": "refused"}, headers=auth(writer)
        )
        assert response.status_code == 405
        assert response.json()["type"] == "/problems/method-not-allowed"
        assert (await registry.get(f"{ACTIVITIES}/{activity['id']}", headers=auth(writer))).json() == activity

    async def test_filters_by_certificate_body_holder_and_kind(self, registry, writer, token_for, chain):
        certificate = chain["certificate"]
        audit = await record_activity(
            registry, writer, chain["body"], chain["holder"], certificate_id=certificate["id"]
        )
        surveillance = await record_activity(
            registry,
            writer,
            chain["body"],
            chain["holder"],
            kind="surveillance",
            certificate_id=certificate["id"],
        )
        application = await record_activity(
            registry, writer, chain["body"], chain["holder"], kind="application", result="pending"
        )
        reader = token_for()

        async def ids(**params) -> list[int]:
            response = await registry.get(ACTIVITIES, params=params, headers=auth(reader))
            assert response.status_code == 200, response.text
            return [a["id"] for a in response.json()["items"]]

        assert await ids(holder_id=chain["holder"]["id"]) == [
            audit["id"],
            surveillance["id"],
            application["id"],
        ]
        assert await ids(certificate_id=certificate["id"]) == [audit["id"], surveillance["id"]]
        assert await ids(body_id=chain["body"]["id"], kind="surveillance") == [surveillance["id"]]
        assert await ids(holder_id=chain["holder"]["id"], kind="decision") == []

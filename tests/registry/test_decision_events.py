"""Decision events in: the enforcement body's certificate actions reach the registry once,
through the certificate's own status steps, and every one is answered."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.common.jobs import handle_event
from services.registry.certification.models import Certificate, CertificateStatusChange
from services.registry.decisions.service import APPLIED, DECIDED, REJECTED
from services.registry.models import INBOX, OUTBOX
from services.registry.tasks import HANDLERS
from tests.conftest import auth
from tests.factories import chain_of, create_provincial_unit, unique

EVENTS = "/api/v1/registry/events"


@pytest.fixture(scope="module")
async def deciding_bureau(registry, token_for):
    """The bureau whose enforcement body decided (the events carry its scope)."""
    return await create_provincial_unit(registry, token_for(), "quality_supervision", pilot="none")


@pytest.fixture
async def certificate(registry, deciding_bureau) -> Certificate:
    return (await chain_of(registry, deciding_bureau))["certificate"]


def decided(bureau: dict, certificate: Certificate | None = None, action: str = "suspend", **payload) -> dict:
    """An ``enforcement.certificate_action.decided`` event as the relay hands it to the worker."""
    body = {
        "action": action,
        "certificate_id": certificate.id if certificate else None,
        "certificate_number": certificate.number if certificate else "2008990901999999",
        "case_ref": unique("浙质监罚字"),
        "reason": "获证产品与型式试验样品不一致",
        "decided_on": "2008-10-20",
        **payload,
    }
    return {
        "id": str(uuid.uuid4()),
        "type": DECIDED,
        "version": 1,
        "aggregate_type": "case",
        "aggregate_id": unique("case"),
        "aggregate_version": 1,
        "bureau_id": bureau["id"],
        "bureau_path": bureau["path"],
        "occurred_at": datetime.now(UTC).isoformat(),
        "request_id": None,
        "payload": body,
    }


def worker_ctx(registry) -> dict:
    """What the registry worker's startup puts in the job context, with its own handler table."""
    return {
        "service": "registry",
        "sessionmaker": registry.app.state.sessionmaker,
        "inbox": INBOX,
        "event_handlers": HANDLERS,
        "job_try": 1,
    }


async def deliver(registry, event: dict) -> dict:
    return await handle_event(worker_ctx(registry), event)


async def stored_certificate(registry, certificate_id: int) -> Certificate:
    async with registry.app.state.sessionmaker() as session:
        return await session.get(Certificate, certificate_id)


async def history(registry, certificate_id: int) -> list[CertificateStatusChange]:
    async with registry.app.state.sessionmaker() as session:
        query = (
            select(CertificateStatusChange)
            .where(CertificateStatusChange.certificate_id == certificate_id)
            .order_by(CertificateStatusChange.id)
        )
        return list((await session.exec(query)).scalars().all())


async def inbox_row(registry, event: dict):
    async with registry.app.state.sessionmaker() as session:
        query = select(INBOX.table).where(INBOX.table.c.event_id == uuid.UUID(event["id"]))
        return (await session.exec(query)).mappings().all()


async def answers(registry, event: dict) -> list[dict]:
    """The answering events this decision got, from the registry's outbox."""
    async with registry.app.state.sessionmaker() as session:
        table = OUTBOX.table
        query = (
            select(table)
            .where(
                table.c.type.in_([APPLIED, REJECTED]),
                table.c.payload["decision_event_id"].astext == event["id"],
            )
            .order_by(table.c.occurred_at)
        )
        return [dict(r) for r in (await session.exec(query)).mappings().all()]


def handled_once(result: dict, event: dict, outcome: str) -> None:
    assert result == {"event_id": event["id"], "outcome": outcome}


class TestAppliedActions:
    async def test_suspension_is_applied_with_its_history_and_answer(
        self, registry, deciding_bureau, certificate
    ):
        event = decided(deciding_bureau, certificate, "suspend")
        handled_once(await deliver(registry, event), event, "applied")
        stored = await stored_certificate(registry, certificate.id)
        assert stored.status == "suspended" and stored.version == certificate.version + 1
        (step,) = await history(registry, certificate.id)
        assert (step.from_status, step.to_status) == ("valid", "suspended")
        assert step.case_ref == event["payload"]["case_ref"]
        assert step.decision_event_id == event["id"]
        assert step.actor_kind == "service" and step.actor_bureau_id == deciding_bureau["id"]
        assert event["payload"]["reason"] in step.reason
        (row,) = await inbox_row(registry, event)
        assert row["outcome"] == "applied" and row["reason"] is None
        (answer,) = await answers(registry, event)
        assert answer["type"] == APPLIED
        assert answer["aggregate_type"] == "certificate" and answer["aggregate_id"] == str(certificate.id)
        assert answer["aggregate_version"] == stored.version
        assert answer["bureau_path"] == deciding_bureau["path"]
        assert answer["payload"]["certificate_id"] == certificate.id
        assert answer["payload"]["action"] == "suspend"
        assert answer["enqueued_at"] is None  # pending until the relay hands it on

    async def test_the_applied_step_is_told_and_shown_like_any_other(
        self, registry, token_for, deciding_bureau, certificate
    ):
        event = decided(deciding_bureau, certificate, "revoke")
        await deliver(registry, event)
        # The certificate's own event goes out to enforcement and statistics, naming the case.
        async with registry.app.state.sessionmaker() as session:
            table = OUTBOX.table
            query = select(table.c.payload).where(
                table.c.type == "registry.certificate.status_changed",
                table.c.aggregate_id == str(certificate.id),
            )
            (changed,) = (await session.exec(query)).scalars().all()
        assert (changed["from_status"], changed["to_status"]) == ("valid", "revoked")
        assert changed["case_ref"] == event["payload"]["case_ref"]
        # The public history shows the decision that caused the step.
        response = await registry.get(
            f"/api/v1/registry/certificates/{certificate.id}/history", headers=auth(token_for())
        )
        assert response.status_code == 200, response.text
        last = response.json()["items"][-1]
        assert (last["case_ref"], last["decision_event_id"]) == (event["payload"]["case_ref"], event["id"])

    async def test_suspended_then_restored(self, registry, deciding_bureau, certificate):
        await deliver(registry, decided(deciding_bureau, certificate, "suspend"))
        restore = decided(deciding_bureau, certificate, "restore")
        handled_once(await deliver(registry, restore), restore, "applied")
        assert (await stored_certificate(registry, certificate.id)).status == "valid"
        steps = await history(registry, certificate.id)
        assert [(s.from_status, s.to_status) for s in steps] == [
            ("valid", "suspended"),
            ("suspended", "valid"),
        ]

    @pytest.mark.parametrize("first", [None, "suspend"])
    async def test_revocation_from_valid_or_suspended(self, registry, deciding_bureau, certificate, first):
        if first:
            await deliver(registry, decided(deciding_bureau, certificate, first))
        revoke = decided(deciding_bureau, certificate, "revoke")
        handled_once(await deliver(registry, revoke), revoke, "applied")
        assert (await stored_certificate(registry, certificate.id)).status == "revoked"

    async def test_a_certificate_named_by_number_only(self, registry, deciding_bureau, certificate):
        event = decided(deciding_bureau, certificate, "suspend", certificate_id=None)
        handled_once(await deliver(registry, event), event, "applied")
        assert (await stored_certificate(registry, certificate.id)).status == "suspended"
        (answer,) = await answers(registry, event)
        assert answer["payload"]["certificate_id"] == certificate.id

    async def test_the_answer_is_listed_with_the_registry_s_events(
        self, registry, token_for, deciding_bureau, certificate
    ):
        event = decided(deciding_bureau, certificate, "suspend")
        await deliver(registry, event)
        response = await registry.get(
            EVENTS,
            params={"type": APPLIED, "aggregate_type": "certificate", "aggregate_id": str(certificate.id)},
            headers=auth(token_for(deciding_bureau)),
        )
        assert response.status_code == 200, response.text
        (listed,) = response.json()["items"]
        assert listed["payload"]["decision_event_id"] == event["id"] and listed["state"] == "pending"
        inbox = await registry.get(
            f"{EVENTS}/inbox",
            params={"type": DECIDED, "aggregate_id": event["aggregate_id"]},
            headers=auth(token_for(deciding_bureau)),
        )
        assert [(e["event_id"], e["outcome"]) for e in inbox.json()["items"]] == [(event["id"], "applied")]


class TestRedelivery:
    async def test_a_duplicate_delivery_is_applied_once(self, registry, deciding_bureau, certificate):
        event = decided(deciding_bureau, certificate, "suspend")
        handled_once(await deliver(registry, event), event, "applied")
        handled_once(await deliver(registry, event), event, "duplicate")
        stored = await stored_certificate(registry, certificate.id)
        assert stored.status == "suspended" and stored.version == certificate.version + 1
        assert len(await history(registry, certificate.id)) == 1
        assert len(await answers(registry, event)) == 1

    async def test_concurrent_duplicate_deliveries_are_applied_once(
        self, registry, deciding_bureau, certificate
    ):
        event = decided(deciding_bureau, certificate, "revoke")
        results = await asyncio.gather(*(deliver(registry, event) for _ in range(3)))
        assert sorted(r["outcome"] for r in results) == ["applied", "duplicate", "duplicate"]
        assert len(await history(registry, certificate.id)) == 1
        assert len(await answers(registry, event)) == 1


class TestRejectedActions:
    async def assert_rejected(
        self, registry, event: dict, certificate: Certificate | None, words: str
    ) -> str:
        handled_once(await deliver(registry, event), event, "rejected")
        (row,) = await inbox_row(registry, event)
        assert row["outcome"] == "rejected" and words in row["reason"]
        (answer,) = await answers(registry, event)
        assert answer["type"] == REJECTED
        assert answer["payload"]["reason"] == row["reason"]
        assert answer["payload"]["certificate_id"] == (certificate.id if certificate else None)
        return row["reason"]

    @pytest.mark.parametrize(
        ("before", "action", "status"),
        [
            ("revoke", "restore", "revoked"),
            ("revoke", "suspend", "revoked"),
            ("suspend", "suspend", "suspended"),
            (None, "restore", "valid"),
        ],
    )
    async def test_a_move_the_state_does_not_allow(
        self, registry, deciding_bureau, certificate, before, action, status
    ):
        if before:
            await deliver(registry, decided(deciding_bureau, certificate, before))
        prior = await stored_certificate(registry, certificate.id)
        steps_before = len(await history(registry, certificate.id))
        event = decided(deciding_bureau, certificate, action)
        reason = await self.assert_rejected(registry, event, certificate, status)
        assert action in reason
        stored = await stored_certificate(registry, certificate.id)
        assert (stored.status, stored.version) == (prior.status, prior.version) == (status, prior.version)
        assert len(await history(registry, certificate.id)) == steps_before

    async def test_an_unknown_certificate_id(self, registry, deciding_bureau):
        event = decided(deciding_bureau, None, "revoke", certificate_id=2**53 - 1)
        await self.assert_rejected(registry, event, None, "no certificate")

    async def test_an_unknown_certificate_number(self, registry, deciding_bureau):
        event = decided(deciding_bureau, None, "suspend", certificate_number="2008770901000000")
        await self.assert_rejected(registry, event, None, "2008770901000000")

    async def test_an_id_and_a_number_of_different_certificates(self, registry, deciding_bureau, certificate):
        other = (await chain_of(registry, deciding_bureau))["certificate"]
        event = decided(deciding_bureau, certificate, "suspend", certificate_number=other.number)
        await self.assert_rejected(registry, event, None, other.number)
        assert (await stored_certificate(registry, certificate.id)).status == "valid"
        assert (await stored_certificate(registry, other.id)).status == "valid"

    async def test_a_payload_the_catalogue_does_not_describe(self, registry, deciding_bureau, certificate):
        event = decided(deciding_bureau, certificate, "burn")
        handled_once(await deliver(registry, event), event, "rejected")
        (row,) = await inbox_row(registry, event)
        assert "catalogue" in row["reason"]
        assert await answers(registry, event) == []
        assert (await stored_certificate(registry, certificate.id)).status == "valid"

    async def test_a_rejected_event_is_not_retried_into_an_application(
        self, registry, deciding_bureau, certificate
    ):
        # Redelivered after the certificate's state changed, a rejected event stays rejected.
        await deliver(registry, decided(deciding_bureau, certificate, "suspend"))
        early_restore = decided(deciding_bureau, certificate, "suspend")
        handled_once(await deliver(registry, early_restore), early_restore, "rejected")
        await deliver(registry, decided(deciding_bureau, certificate, "restore"))
        handled_once(await deliver(registry, early_restore), early_restore, "duplicate")
        assert (await stored_certificate(registry, certificate.id)).status == "valid"

"""Events without the queue: the catalogue, emitting into the caller's transaction, the
consumer's inbox (once in effect, stale versions, rejections, retries) and the lists.

The relay and real queues are in tests/common/test_relay.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from arq import Retry
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from services.common import event_schemas
from services.common.auth import Role
from services.common.context import reset_request_id, set_request_id
from services.common.event_schemas import CertificateActionRejected, CertificateStatusChanged
from services.common.events import EVENT_TYPES, Event, UnknownEventType, catalogue_schema, event_type
from services.common.jobs import NoHandler, handle_event, is_transient
from services.common.outbox import InboxOutcome, Outcome, TransientError, every_version
from services.common.pagination import encode_cursor
from services.registry.app import INBOX, OUTBOX
from services.registry.models import InboxEvent, OutboxEvent
from tests.common.test_problems import assert_problem
from tests.conftest import TEST_ENV, auth

PARTS = {"registry", "enforcement", "statistics", "gateway"}
DECIDED = "enforcement.certificate_action.decided"
STATUS_CHANGED = "registry.certificate.status_changed"
ZHEJIANG = {"id": 8, "path": "1.8."}
SHANDONG = {"id": 9, "path": "1.9."}


def status_changed(**overrides) -> CertificateStatusChanged:
    values = {
        "certificate_id": 7,
        "number": "CQC2024010101000001",
        "scheme": "CCC",
        "from_status": "valid",
        "to_status": "suspended",
        "reason": "non-compliant sample",
        "case_ref": None,
        "changed_at": datetime(2026, 11, 29, 8, 0, tzinfo=UTC),
    }
    return CertificateStatusChanged(**{**values, **overrides})


async def emit(session, aggregate_id: str, *, version: int = 1, bureau=ZHEJIANG, payload=None):
    return await OUTBOX.emit(
        session,
        STATUS_CHANGED,
        aggregate_type="certificate",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        bureau_id=bureau["id"] if bureau else None,
        bureau_path=bureau["path"] if bureau else None,
        payload=payload if payload is not None else status_changed(),
    )


async def outbox_rows(sessionmaker, aggregate_id: str) -> list:
    async with sessionmaker() as session:
        query = select(OutboxEvent).where(OutboxEvent.c.aggregate_id == aggregate_id)
        return list((await session.exec(query.order_by(OutboxEvent.c.occurred_at))).mappings().all())


async def inbox_row(sessionmaker, event_id):
    async with sessionmaker() as session:
        query = select(InboxEvent).where(InboxEvent.c.event_id == event_id)
        return (await session.exec(query)).mappings().first()


def decided(aggregate_id: str, version: int, *, bureau=ZHEJIANG) -> Event:
    """An event as the registry's worker receives it from enforcement."""
    return Event(
        id=uuid.uuid4(),
        type=DECIDED,
        version=1,
        aggregate_type="case",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        bureau_id=bureau["id"],
        bureau_path=bureau["path"],
        occurred_at=datetime.now(UTC),
        request_id=None,
        payload={
            "action": "suspend",
            "certificate_id": 7,
            "certificate_number": "CQC2024010101000001",
            "case_ref": f"case-{aggregate_id}",
            "reason": "penalty decision",
            "decided_on": "2026-11-29",
        },
    )


class Recorder:
    """A handler that notes what it applied (per aggregate, the last version)."""

    def __init__(self, outcome: Outcome | None = None, delay: float = 0.0) -> None:
        self.calls: list[uuid.UUID] = []
        self.state: dict[str, int] = {}
        self.outcome = outcome or Outcome.applied()
        self.delay = delay

    async def __call__(self, session, event: Event) -> Outcome:
        self.calls.append(event.id)
        await asyncio.sleep(self.delay)
        if self.outcome.outcome is InboxOutcome.APPLIED:
            self.state[event.aggregate_id] = event.aggregate_version
        return self.outcome


def worker_ctx(registry, handlers: dict, job_try: int = 1) -> dict:
    return {
        "service": "registry",
        "sessionmaker": registry.app.state.sessionmaker,
        "inbox": INBOX,
        "event_handlers": handlers,
        "job_try": job_try,
    }


class TestCatalogue:
    def test_every_type_names_its_producer_consumers_payload_and_version(self):
        for name, spec in EVENT_TYPES.items():
            assert name.split(".")[0] == spec.producer, name
            assert spec.producer in PARTS and set(spec.consumers) <= PARTS, name
            assert spec.producer not in spec.consumers, name
            assert issubclass(spec.payload, event_schemas.Payload), name
            assert spec.version >= 1, name

    def test_the_design_catalogue_is_there(self):
        assert set(EVENT_TYPES) == {
            "registry.officer.changed",
            "registry.inspection.referred",
            "registry.certificate.status_changed",
            "registry.certificate_action.applied",
            "registry.certificate_action.rejected",
            "enforcement.certificate_action.decided",
            "enforcement.lead.changed",
            "enforcement.case.changed",
            "enforcement.review.requested",
            "statistics.review.answered",
            "statistics.filing.answered",
        }
        assert event_type("registry.officer.changed").consumers == ("gateway",)
        assert event_type(STATUS_CHANGED).consumers == ("enforcement", "statistics")
        assert event_type(DECIDED).consumers == ("registry",)

    def test_the_document_holds_each_payload_schema_and_the_envelope(self):
        doc = catalogue_schema().model_dump()
        assert set(doc["events"]) == set(EVENT_TYPES)
        officer = doc["events"]["registry.officer.changed"]
        assert (officer["producer"], officer["consumers"], officer["version"]) == ("registry", ["gateway"], 1)
        assert set(officer["payload"]["required"]) == {
            "officer_id",
            "bureau_id",
            "bureau_path",
            "active",
            "body",
        }
        assert officer["payload"]["additionalProperties"] is False
        assert set(doc["envelope"]["required"]) == {
            "id",
            "type",
            "version",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            "bureau_id",
            "bureau_path",
            "occurred_at",
            "request_id",
            "payload",
        }

    @pytest.mark.parametrize("service", ["registry", "enforcement"])
    async def test_every_service_serves_the_document(self, registry, enforcement, token_for, service):
        client = registry if service == "registry" else enforcement
        response = await client.get(f"/api/v1/{service}/events/schema", headers=auth(token_for()))
        assert response.status_code == 200
        assert response.json() == catalogue_schema().model_dump(mode="json")

    async def test_the_document_needs_a_token(self, registry):
        response = await registry.get("/api/v1/registry/events/schema")
        assert_problem(response, 401, "/problems/unauthorized")


class TestEmit:
    async def test_an_event_is_written_with_the_callers_transaction(self, registry):
        maker = registry.app.state.sessionmaker
        aggregate_id = f"cert-{uuid.uuid4().hex[:8]}"
        token = set_request_id("req-emit-test-0001")
        try:
            async with maker() as session:
                event = await emit(session, aggregate_id, version=3)
                await session.commit()
        finally:
            reset_request_id(token)
        [row] = await outbox_rows(maker, aggregate_id)
        assert row["id"] == event.id
        assert (row["type"], row["version"], row["aggregate_type"], row["aggregate_version"]) == (
            STATUS_CHANGED,
            1,
            "certificate",
            3,
        )
        assert (row["bureau_id"], row["bureau_path"], row["request_id"]) == (8, "1.8.", "req-emit-test-0001")
        assert row["payload"] == status_changed().model_dump(mode="json")
        assert (row["enqueued_at"], row["delivered_at"], row["attempts"], row["last_error"]) == (
            None,
            None,
            0,
            None,
        )
        assert row["occurred_at"] == event.occurred_at

    async def test_a_rolled_back_change_leaves_no_event(self, registry):
        maker = registry.app.state.sessionmaker
        aggregate_id = f"cert-{uuid.uuid4().hex[:8]}"
        async with maker() as session:
            await emit(session, aggregate_id)
            await session.rollback()
        assert await outbox_rows(maker, aggregate_id) == []

    async def test_a_payload_may_be_a_dict_checked_against_the_catalogue(self, registry):
        maker = registry.app.state.sessionmaker
        aggregate_id = f"cert-{uuid.uuid4().hex[:8]}"
        async with maker() as session:
            await emit(session, aggregate_id, payload=status_changed().model_dump(mode="json"))
            await session.commit()
        [row] = await outbox_rows(maker, aggregate_id)
        assert row["payload"]["changed_at"] == "2026-11-29T08:00:00Z"

    @pytest.mark.parametrize(
        "payload",
        [
            {"certificate_id": 7},  # fields missing
            {**status_changed().model_dump(), "extra": 1},  # a field the catalogue does not describe
            {**status_changed().model_dump(), "certificate_id": "seven"},
        ],
    )
    async def test_a_payload_the_catalogue_does_not_describe_is_refused(self, registry, payload):
        async with registry.app.state.sessionmaker() as session:
            with pytest.raises(ValidationError):
                await emit(session, "cert-refused", payload=payload)

    async def test_an_unknown_type_or_another_services_type_is_refused(self, registry):
        async with registry.app.state.sessionmaker() as session:
            with pytest.raises(UnknownEventType):
                await OUTBOX.emit(
                    session,
                    "registry.certificate.renamed",
                    aggregate_type="certificate",
                    aggregate_id=1,
                    aggregate_version=1,
                    bureau_id=None,
                    bureau_path=None,
                    payload={},
                )
            with pytest.raises(ValueError, match="produced by enforcement, not registry"):
                await OUTBOX.emit(
                    session,
                    DECIDED,
                    aggregate_type="case",
                    aggregate_id=1,
                    aggregate_version=1,
                    bureau_id=None,
                    bureau_path=None,
                    payload=decided("1", 1).payload,
                )


class TestInbox:
    async def test_the_same_event_twice_applies_once(self, registry):
        handler = Recorder()
        event = decided(uuid.uuid4().hex, 1)
        ctx = worker_ctx(registry, {DECIDED: handler})
        first = await handle_event(ctx, event.model_dump(mode="json"))
        second = await handle_event(ctx, event.model_dump(mode="json"))
        assert first == {"event_id": str(event.id), "outcome": "applied"}
        assert second == {"event_id": str(event.id), "outcome": "duplicate"}
        assert handler.calls == [event.id]
        row = await inbox_row(registry.app.state.sessionmaker, event.id)
        assert (row["outcome"], row["reason"], row["aggregate_version"]) == ("applied", None, 1)

    async def test_two_deliveries_at_once_apply_once(self, registry):
        handler = Recorder(delay=0.2)
        event = decided(uuid.uuid4().hex, 1).model_dump(mode="json")
        ctx = worker_ctx(registry, {DECIDED: handler})
        results = await asyncio.gather(handle_event(ctx, event), handle_event(ctx, event))
        assert sorted(r["outcome"] for r in results) == ["applied", "duplicate"]
        assert len(handler.calls) == 1

    async def test_an_older_version_arriving_late_changes_nothing(self, registry):
        handler = Recorder()
        aggregate = uuid.uuid4().hex
        newer, older = decided(aggregate, 2), decided(aggregate, 1)
        ctx = worker_ctx(registry, {DECIDED: handler})
        await handle_event(ctx, newer.model_dump(mode="json"))
        result = await handle_event(ctx, older.model_dump(mode="json"))
        assert result["outcome"] == "stale"
        assert handler.calls == [newer.id]
        assert handler.state == {aggregate: 2}
        row = await inbox_row(registry.app.state.sessionmaker, older.id)
        assert (row["outcome"], row["reason"]) == (
            "stale",
            "version 1 is older than version 2, already applied",
        )

    async def test_a_handler_of_every_version_applies_an_older_one_once(self, registry):
        handler = every_version(Recorder())
        aggregate = uuid.uuid4().hex
        newer, older = decided(aggregate, 2), decided(aggregate, 1)
        ctx = worker_ctx(registry, {DECIDED: handler})
        outcomes = [
            (await handle_event(ctx, e.model_dump(mode="json")))["outcome"] for e in (newer, older, older)
        ]
        assert outcomes == ["applied", "applied", "duplicate"]
        assert handler.calls == [newer.id, older.id]

    async def test_versions_of_one_aggregate_at_once_end_at_the_newest(self, registry):
        handler = Recorder(delay=0.1)
        aggregate = uuid.uuid4().hex
        ctx = worker_ctx(registry, {DECIDED: handler})
        events = [decided(aggregate, v).model_dump(mode="json") for v in (3, 1, 2)]
        await asyncio.gather(*(handle_event(ctx, e) for e in events))
        assert handler.state == {aggregate: 3}

    async def test_a_rejected_event_is_recorded_with_its_reason_and_its_answer(self, registry):
        maker = registry.app.state.sessionmaker
        event = decided(uuid.uuid4().hex, 1)

        async def refuse(session, received: Event) -> Outcome:
            await OUTBOX.emit(
                session,
                "registry.certificate_action.rejected",
                aggregate_type="certificate",
                aggregate_id=received.payload["certificate_number"],
                aggregate_version=1,
                bureau_id=received.bureau_id,
                bureau_path=received.bureau_path,
                payload=CertificateActionRejected(
                    decision_event_id=received.id,
                    certificate_id=None,
                    certificate_number=received.payload["certificate_number"],
                    action="suspend",
                    reason="no such certificate",
                ),
            )
            return Outcome.rejected("no such certificate")

        result = await handle_event(worker_ctx(registry, {DECIDED: refuse}), event.model_dump(mode="json"))
        assert result["outcome"] == "rejected"
        row = await inbox_row(maker, event.id)
        assert (row["outcome"], row["reason"]) == ("rejected", "no such certificate")
        answers = [
            r
            for r in await outbox_rows(maker, "CQC2024010101000001")
            if r["payload"]["decision_event_id"] == str(event.id)
        ]
        assert [a["type"] for a in answers] == ["registry.certificate_action.rejected"]

    async def test_a_rejected_version_does_not_make_older_ones_stale(self, registry):
        aggregate = uuid.uuid4().hex
        await handle_event(
            worker_ctx(registry, {DECIDED: Recorder(Outcome.rejected("not now"))}),
            decided(aggregate, 2).model_dump(mode="json"),
        )
        handler = Recorder()
        result = await handle_event(
            worker_ctx(registry, {DECIDED: handler}), decided(aggregate, 1).model_dump(mode="json")
        )
        assert result["outcome"] == "applied"
        assert handler.state == {aggregate: 1}

    async def test_a_transient_failure_is_retried_later_and_records_nothing(self, registry):
        event = decided(uuid.uuid4().hex, 1)

        async def registry_down(session, received):
            raise TransientError("the certificate service did not answer")

        with pytest.raises(Retry) as raised:
            await handle_event(worker_ctx(registry, {DECIDED: registry_down}, job_try=3), event.model_dump())
        assert raised.value.defer_score == 4000  # 0.5 s × 2³, in ms
        assert await inbox_row(registry.app.state.sessionmaker, event.id) is None

    async def test_a_failing_handler_fails_the_job_and_records_nothing(self, registry):
        event = decided(uuid.uuid4().hex, 1)

        async def broken(session, received):
            raise KeyError("certificate_number")

        with pytest.raises(KeyError):
            await handle_event(worker_ctx(registry, {DECIDED: broken}), event.model_dump())
        assert await inbox_row(registry.app.state.sessionmaker, event.id) is None

    async def test_an_event_without_a_handler_fails_the_job(self, registry):
        event = decided(uuid.uuid4().hex, 1)
        with pytest.raises(NoHandler) as raised:
            await handle_event(worker_ctx(registry, {}), event.model_dump())
        assert str(raised.value) == f"registry has no handler for {DECIDED}"
        assert await inbox_row(registry.app.state.sessionmaker, event.id) is None

    def test_transient_errors_are_told_apart(self):
        def wrapped(cause: BaseException) -> BaseException:
            try:
                try:
                    raise cause
                except BaseException as inner:
                    raise DBAPIError("SELECT 1", {}, inner) from inner
            except DBAPIError as outer:
                return outer

        assert is_transient(ConnectionRefusedError()) is True
        assert is_transient(wrapped(ConnectionResetError())) is True
        assert is_transient(TransientError("later")) is True
        assert is_transient(ValueError("bad payload")) is False
        assert is_transient(wrapped(ValueError("constraint"))) is False


class TestEventLists:
    EVENTS = "/api/v1/registry/events"
    INBOX = "/api/v1/registry/events/inbox"

    async def test_the_outbox_lists_events_newest_first_with_their_state(self, registry, token_for):
        maker = registry.app.state.sessionmaker
        aggregate_id = f"cert-{uuid.uuid4().hex[:8]}"
        async with maker() as session:
            first = await emit(session, aggregate_id, version=1)
            second = await emit(session, aggregate_id, version=2)
            third = await emit(session, aggregate_id, version=3)
            await session.commit()
            now = datetime.now(UTC)
            await session.exec(
                OutboxEvent.update()
                .where(OutboxEvent.c.id == first.id)
                .values(enqueued_at=now, delivered_at=now)
            )
            await session.exec(
                OutboxEvent.update().where(OutboxEvent.c.id == second.id).values(enqueued_at=now, attempts=1)
            )
            await session.commit()
        response = await registry.get(
            self.EVENTS, params={"aggregate_id": aggregate_id}, headers=auth(token_for())
        )
        assert response.status_code == 200
        items = response.json()["items"]
        assert [(i["id"], i["state"]) for i in items] == [
            (str(third.id), "pending"),
            (str(second.id), "enqueued"),
            (str(first.id), "delivered"),
        ]
        assert items[0]["payload"] == status_changed().model_dump(mode="json")
        for state, expected in (("pending", third), ("enqueued", second), ("delivered", first)):
            response = await registry.get(
                self.EVENTS, params={"aggregate_id": aggregate_id, "state": state}, headers=auth(token_for())
            )
            assert [i["id"] for i in response.json()["items"]] == [str(expected.id)], state

    async def test_pages_follow_the_cursor(self, registry, token_for):
        maker = registry.app.state.sessionmaker
        aggregate_id = f"cert-{uuid.uuid4().hex[:8]}"
        async with maker() as session:
            events = [await emit(session, aggregate_id, version=v) for v in range(1, 6)]
            await session.commit()
        seen, cursor = [], None
        while True:
            params = {"aggregate_id": aggregate_id, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await registry.get(self.EVENTS, params=params, headers=auth(token_for()))).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [str(e.id) for e in reversed(events)]

    async def test_a_principal_sees_the_events_of_its_subtree(self, registry, token_for):
        maker = registry.app.state.sessionmaker
        aggregate_id = f"cert-{uuid.uuid4().hex[:8]}"
        async with maker() as session:
            zhejiang = await emit(session, aggregate_id, bureau=ZHEJIANG)
            shandong = await emit(session, aggregate_id, bureau=SHANDONG)
            national = await emit(session, aggregate_id, bureau=None)
            await session.commit()

        async def visible(token: str) -> set[str]:
            response = await registry.get(
                self.EVENTS, params={"aggregate_id": aggregate_id}, headers=auth(token)
            )
            assert response.status_code == 200
            return {i["id"] for i in response.json()["items"]}

        assert await visible(token_for(ZHEJIANG, roles=(Role.SUPERVISION,))) == {str(zhejiang.id)}
        assert await visible(token_for(SHANDONG)) == {str(shandong.id)}
        assert await visible(token_for(roles=(Role.LEGAL,))) == {str(zhejiang.id), str(shandong.id)}
        assert await visible(token_for()) == {str(zhejiang.id), str(shandong.id), str(national.id)}

    async def test_the_inbox_lists_what_was_made_of_each_event(self, registry, token_for):
        aggregate = uuid.uuid4().hex
        applied, refused = decided(aggregate, 2), decided(aggregate, 3)
        await handle_event(worker_ctx(registry, {DECIDED: Recorder()}), applied.model_dump(mode="json"))
        await handle_event(
            worker_ctx(registry, {DECIDED: Recorder(Outcome.rejected("certificate already revoked"))}),
            refused.model_dump(mode="json"),
        )
        response = await registry.get(
            self.INBOX, params={"aggregate_id": aggregate}, headers=auth(token_for())
        )
        assert response.status_code == 200
        assert [(i["event_id"], i["outcome"], i["reason"]) for i in response.json()["items"]] == [
            (str(refused.id), "rejected", "certificate already revoked"),
            (str(applied.id), "applied", None),
        ]
        rejected = await registry.get(
            self.INBOX,
            params={"aggregate_id": aggregate, "outcome": "rejected", "type": DECIDED},
            headers=auth(token_for(ZHEJIANG)),
        )
        assert [i["event_id"] for i in rejected.json()["items"]] == [str(refused.id)]
        elsewhere = await registry.get(
            self.INBOX, params={"aggregate_id": aggregate}, headers=auth(token_for(SHANDONG))
        )
        assert elsewhere.json()["items"] == []

    @pytest.mark.parametrize(
        "params",
        [
            {"type": "registry.certificate.renamed"},
            {"state": "lost"},
            {"aggregate_id": "x" * 65},
            {"aggregate_type": "Certificate"},
            {"cursor": encode_cursor([1])},
            {"cursor": encode_cursor(["yesterday", "not-a-uuid"])},
            {"cursor": encode_cursor(["2026-11-29T08:00:00", str(uuid.UUID(int=1))])},  # no offset
        ],
    )
    async def test_a_filter_outside_its_format_is_a_422_problem(self, registry, token_for, params):
        response = await registry.get(self.EVENTS, params=params, headers=auth(token_for()))
        assert_problem(response, 422, "/problems/validation-error")

    async def test_the_lists_need_a_token(self, registry):
        for path in (self.EVENTS, self.INBOX):
            assert_problem(await registry.get(path), 401, "/problems/unauthorized")


class TestEnvelope:
    def test_occurred_at_is_kept_in_utc(self):
        shanghai = timezone(timedelta(hours=8))
        event = decided("1", 1).model_dump()
        event["occurred_at"] = datetime(2026, 11, 29, 16, 0, tzinfo=shanghai)
        assert Event.model_validate(event).occurred_at == datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
        assert Event.model_validate(event).occurred_at.utcoffset() == timedelta(0)

    def test_a_naive_instant_is_refused(self):
        event = decided("1", 1).model_dump()
        event["occurred_at"] = datetime(2026, 11, 29, 8, 0)
        with pytest.raises(ValidationError):
            Event.model_validate(event)

    def test_legal_dates_stay_dates(self):
        payload = event_schemas.InspectionReferred(
            inspection_id=1,
            target_type="enterprise",
            target_id=2,
            target_name="某某电器有限公司",
            result="non_compliant",
            findings="标志不符合",
            inspected_on=date(2026, 11, 2),
            bureau_id=8,
        )
        assert payload.model_dump(mode="json")["inspected_on"] == "2026-11-02"


class TestWorkerSettings:
    def test_every_consuming_worker_runs_handle_event_on_its_own_queue(self):
        from gateway.tasks import WorkerSettings as gateway
        from services.enforcement.tasks import WorkerSettings as enforcement
        from services.registry.tasks import WorkerSettings as registry
        from services.statistics.tasks import WorkerSettings as statistics

        workers = {
            "gateway": gateway,
            "registry": registry,
            "enforcement": enforcement,
            "statistics": statistics,
        }
        for name, settings in workers.items():
            assert settings.queue_name == f"{TEST_ENV['ARQ_QUEUE_PREFIX']}{name}"
            names = [getattr(f, "name", getattr(f, "__name__", "")) for f in settings.functions]
            # The common jobs, handle_event once; a service's own jobs besides.
            assert {"check_audit_chain", "handle_event", "purge_idempotency_keys"} <= set(names), name
            assert names.count("handle_event") == 1 and len(names) == len(set(names)), name

    def test_a_handler_of_an_event_the_service_is_not_sent_is_refused(self):
        from services.common.jobs import worker_settings
        from services.registry.app import AUDIT
        from services.registry.config import get_settings

        with pytest.raises(ValueError) as raised:
            worker_settings(
                "registry", get_settings(), AUDIT, inbox=INBOX, handlers={STATUS_CHANGED: Recorder()}
            )
        assert (
            str(raised.value) == f"registry handles events the catalogue does not send it: {STATUS_CHANGED}"
        )

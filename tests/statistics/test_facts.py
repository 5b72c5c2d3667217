"""Facts from the events: once per event, forward only, a failed handler leaves nothing behind,
the bureau dimension filled from the registry (and later, when the registry was away)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.common.auth import Role
from services.common.jobs import handle_event
from services.statistics.consumers import HANDLERS
from services.statistics.facts import bureaus
from services.statistics.facts.consumers import CASE_CHANGED
from tests.statistics.fact_flow import case_event, deliver, figures, new_case_id, stats_ctx
from tests.world import build_world


@pytest.fixture(scope="module")
async def own(registry, enforcement, token_for):
    return await build_world(registry, token_for)


async def fact(statistics, case_id: int):
    async with statistics.app.state.sessionmaker() as session:
        return (
            await session.execute(text("SELECT * FROM case_fact WHERE case_id = :id"), {"id": case_id})
        ).first()


async def inbox_outcome(statistics, event_id: str):
    async with statistics.app.state.sessionmaker() as session:
        return (
            await session.execute(
                text("SELECT outcome FROM inbox_event WHERE event_id = CAST(:id AS uuid)"), {"id": event_id}
            )
        ).scalar()


class TestOncePerEventForwardOnly:
    async def test_duplicates_and_late_old_versions_change_nothing(self, statistics, own, token_for):
        bureau = own.county
        case_id = new_case_id()
        v1 = case_event(bureau, case_id, 1, opened_on="2026-04-02")
        v2 = case_event(
            bureau,
            case_id,
            2,
            opened_on="2026-04-02",
            state="decided",
            decided_on="2026-05-06",
            fine_current="1000.00",
            fine_decided="1000.00",
            penalty_kinds=["fine"],
        )
        v3 = case_event(
            bureau,
            case_id,
            3,
            opened_on="2026-04-02",
            state="terminated",
            closed_on="2026-05-20",
            decided_on="2026-05-06",
            fine_current="800.00",
            fine_decided="1000.00",
            penalty_kinds=["fine"],
        )
        # Newest first, then the older ones, then everything again.
        assert await deliver(statistics, [v3, v1, v2, v3, v1]) == [
            "applied",
            "stale",
            "stale",
            "duplicate",
            "duplicate",
        ]
        row = await fact(statistics, case_id)
        assert (row.version, row.state, str(row.fine_current)) == (3, "terminated", "800.00")
        token = token_for(own.county, roles=(Role.HEAD,))
        may = await figures(statistics, token, bureau["id"], period="2026-05", dimension="all")
        assert may[("2026-05", "all", "", "fines_decided")] == "800.00"
        assert may[("2026-05", "all", "", "cases_closed")] == "1"
        april = await figures(statistics, token, bureau["id"], period="2026-04", dimension="all")
        assert april[("2026-04", "all", "", "cases_opened")] == "1"

        # In order, the same end: a second case given v1, v2, v3 counts the same.
        other = new_case_id()
        in_order = [
            {
                **e,
                "id": str(uuid.uuid4()),
                "aggregate_id": str(other),
                "payload": {**e["payload"], "case_id": other},
            }
            for e in (v1, v2, v3)
        ]
        assert await deliver(statistics, in_order) == ["applied"] * 3
        may = await figures(statistics, token, bureau["id"], period="2026-05", dimension="all")
        assert may[("2026-05", "all", "", "fines_decided")] == "1600.00"
        assert may[("2026-05", "all", "", "cases_closed")] == "2"

    async def test_a_payload_outside_the_catalogue_is_rejected_and_counted_nowhere(self, statistics, own):
        case_id = new_case_id()
        event = case_event(own.county, case_id, 1, state=None)
        assert await deliver(statistics, [event]) == ["rejected"]
        assert await fact(statistics, case_id) is None
        nameless = {**case_event(own.county, new_case_id(), 1), "bureau_id": None, "bureau_path": None}
        assert await deliver(statistics, [nameless]) == ["rejected"]


class TestAKilledWorkerCountsNothingTwice:
    async def test_a_handler_failing_after_writing_rolls_back_and_the_retry_counts_once(
        self, statistics, own, token_for
    ):
        from arq import Retry

        bureau = own.county
        event = case_event(bureau, new_case_id(), 1, opened_on="2026-02-11")

        async def dies_after_writing(session, received):
            await HANDLERS[CASE_CHANGED](session, received)  # the fact and its figures written…
            raise ConnectionResetError("the worker lost its connection")  # …then the worker dies

        token = token_for(own.county, roles=(Role.HEAD,))
        before = await figures(statistics, token, bureau["id"], period="2026-02", dimension="all")
        with pytest.raises(Retry):
            await handle_event(stats_ctx(statistics, {CASE_CHANGED: dies_after_writing}), event)
        assert await fact(statistics, int(event["aggregate_id"])) is None
        assert await inbox_outcome(statistics, event["id"]) is None
        assert await figures(statistics, token, bureau["id"], period="2026-02", dimension="all") == before
        # The retry (arq runs the job again) applies it once; a further redelivery is a duplicate.
        assert await deliver(statistics, [event, event]) == ["applied", "duplicate"]
        after = await figures(statistics, token, bureau["id"], period="2026-02", dimension="all")
        opened = int(before.get(("2026-02", "all", "", "cases_opened"), "0"))
        assert after[("2026-02", "all", "", "cases_opened")] == str(opened + 1)


class TestLeadsAndCertificates:
    async def test_leads_and_certificate_changes_count(self, statistics, own, token_for):
        bureau = own.county
        lead_id = new_case_id()
        lead = {
            "id": str(uuid.uuid4()),
            "type": "enforcement.lead.changed",
            "version": 1,
            "aggregate_type": "lead",
            "aggregate_id": str(lead_id),
            "aggregate_version": 1,
            "bureau_id": bureau["id"],
            "bureau_path": bureau["path"],
            "occurred_at": datetime.now(UTC).isoformat(),
            "request_id": None,
            "payload": {
                "lead_id": lead_id,
                "state": "verifying",
                "source": "complaint",
                "subject_type": "auditor",
                "subject_id": 7,
                "received_on": "2026-03-09",
            },
        }
        certificate_id = new_case_id()

        def status(version: int, to: str, at: str) -> dict:
            return {
                **lead,
                "id": str(uuid.uuid4()),
                "type": "registry.certificate.status_changed",
                "aggregate_type": "certificate",
                "aggregate_id": str(certificate_id),
                "aggregate_version": version,
                "payload": {
                    "certificate_id": certificate_id,
                    "number": "2026010101000001",
                    "scheme": "CCC",
                    "from_status": "valid",
                    "to_status": to,
                    "reason": "r",
                    "case_ref": None,
                    "changed_at": at,
                },
            }

        # 2026-03-31T17:00Z is 1 April in Shanghai: the change counts in April.
        suspended = status(2, "suspended", "2026-03-31T17:00:00Z")
        revoked = status(3, "revoked", "2026-04-02T02:00:00Z")
        # The revocation arrives first: the older suspension still counts (each change is a fact).
        assert await deliver(statistics, [lead, lead, revoked, suspended, revoked, suspended]) == [
            "applied",
            "duplicate",
            "applied",
            "applied",
            "duplicate",
            "duplicate",
        ]
        token = token_for(own.province, roles=(Role.HEAD,))
        march = await figures(statistics, token, own.province["id"], period="2026-03")
        assert march[("2026-03", "subject_type", "auditor", "leads_received")] == "1"
        april = await figures(statistics, token, bureau["id"], period="2026-04")
        assert april[("2026-04", "all", "", "certificates_suspended")] == "1"
        assert april[("2026-04", "all", "", "certificates_revoked")] == "1"
        assert ("2026-03", "all", "", "certificates_suspended") not in march


class TestTheBureauDimension:
    async def test_filled_from_the_registry_and_later_when_it_was_away(self, statistics, own, token_for):
        bureau = own.other_county
        services = statistics.app.state.services
        bureaus.forget()
        try:
            # The registry away: the event applies all the same, its system unknown.
            bureaus.use_services(_Down())
            early = case_event(bureau, new_case_id(), 1, opened_on="2026-01-13")
            assert await deliver(statistics, [early]) == ["applied"]
            assert (await fact(statistics, int(early["aggregate_id"]))).system is None
            # The registry back: the next event reads the bureau (and caches it).
            bureaus.forget()
            bureaus.use_services(services)
            later = case_event(bureau, new_case_id(), 1, opened_on="2026-01-14")
            assert await deliver(statistics, [later]) == ["applied"]
            assert (await fact(statistics, int(later["aggregate_id"]))).system == "quality_supervision"
            async with statistics.app.state.sessionmaker() as session:
                row = (
                    await session.execute(
                        text(
                            "SELECT bureau_path, parent_id, level FROM bureau_dimension WHERE bureau_id = :id"
                        ),
                        {"id": bureau["id"]},
                    )
                ).one()
            assert tuple(row) == (bureau["path"], own.city["id"], "county")
            token = token_for(own.province, roles=(Role.HEAD,))
            january = await figures(statistics, token, bureau["id"], period="2026-01", dimension="system")
            assert january[("2026-01", "system", "unknown", "cases_opened")] == "1"
            # The refresh moves the early fact under its system, figures and all.
            async with statistics.app.state.sessionmaker() as session:
                moved = await bureaus.refresh_unknown_systems(await session.connection(), services)
                await session.commit()
            assert moved["case_fact"] >= 1
            assert (await fact(statistics, int(early["aggregate_id"]))).system == "quality_supervision"
            january = await figures(statistics, token, bureau["id"], period="2026-01", dimension="system")
            assert ("2026-01", "system", "unknown", "cases_opened") not in january
            assert january[("2026-01", "system", "quality_supervision", "cases_opened")] == "2"
        finally:
            bureaus.use_services(None)
            bureaus.forget()


class _Down:
    async def get(self, *args, **kwargs):
        raise ConnectionRefusedError("the registry is down")


class TestACaseMovingBureau:
    async def test_its_figures_move_from_one_subtree_to_the_other(self, statistics, own, token_for):
        """A newer version naming another bureau moves every contribution: out of the old
        county, into the new one; the city above both keeps counting it once."""
        case_id = new_case_id()
        first = case_event(own.county, case_id, 1, opened_on="2025-11-03")
        moved = case_event(own.other_county, case_id, 2, opened_on="2025-11-03")
        token = token_for(own.province, roles=(Role.HEAD,))

        async def opened(bureau) -> int:
            found = await figures(statistics, token, bureau["id"], period="2025-11", measure="cases_opened")
            return int(found.get(("2025-11", "all", "", "cases_opened"), "0"))

        before = {b["id"]: await opened(b) for b in (own.county, own.other_county, own.city)}
        assert await deliver(statistics, [first, moved]) == ["applied", "applied"]
        assert await opened(own.county) == before[own.county["id"]]
        assert await opened(own.other_county) == before[own.other_county["id"]] + 1
        assert await opened(own.city) == before[own.city["id"]] + 1

"""An officer's standing (active, bureau, body) changed in the registry is told to the gateway
as a `registry.officer.changed` event, written in the transaction of the change."""

from __future__ import annotations

from sqlalchemy import select

from services.registry.models import OutboxEvent
from tests.conftest import auth
from tests.factories import create_officer

OFFICERS = "/api/v1/registry/officers"
ZHEJIANG = {"id": 8, "path": "1.8."}
SHANDONG = {"id": 9, "path": "1.9."}


async def officer_events(registry, officer_id: int) -> list[dict]:
    async with registry.app.state.sessionmaker() as session:
        query = (
            select(OutboxEvent)
            .where(OutboxEvent.c.aggregate_type == "officer", OutboxEvent.c.aggregate_id == str(officer_id))
            .order_by(OutboxEvent.c.aggregate_version)
        )
        return [dict(r) for r in (await session.exec(query)).mappings().all()]


async def patch(registry, token: str, officer: dict, changes: dict, etag: str | None = None):
    url = f"{OFFICERS}/{officer['id']}"
    if etag is None:
        etag = (await registry.get(url, headers=auth(token))).headers["etag"]
    return await registry.patch(url, json=changes, headers={**auth(token), "If-Match": etag})


class TestOfficerChanged:
    async def test_a_deactivation_is_an_event_of_the_officers_new_version(self, registry, token_for):
        officer = await create_officer(registry, token_for(), ZHEJIANG)
        response = await patch(registry, token_for(), officer, {"active": False})
        assert response.status_code == 200
        [event] = await officer_events(registry, officer["id"])
        assert (event["type"], event["aggregate_version"], event["bureau_id"], event["bureau_path"]) == (
            "registry.officer.changed",
            response.json()["version"],
            8,
            "1.8.",
        )
        assert event["payload"] == {
            "officer_id": officer["id"],
            "bureau_id": 8,
            "bureau_path": "1.8.",
            "active": False,
            "body": "enforcement",
        }
        assert event["request_id"] == response.headers["x-request-id"]

    async def test_a_move_tells_the_new_bureau_and_body(self, registry, token_for):
        officer = await create_officer(registry, token_for(), ZHEJIANG)
        response = await patch(registry, token_for(), officer, {"bureau_id": 9, "body": "legal"})
        assert response.status_code == 200
        [event] = await officer_events(registry, officer["id"])
        assert event["payload"] == {
            "officer_id": officer["id"],
            "bureau_id": 9,
            "bureau_path": "1.9.",
            "active": True,
            "body": "legal",
        }
        assert (event["bureau_id"], event["bureau_path"]) == (9, "1.9.")

    async def test_a_change_the_login_does_not_stand_on_is_no_event(self, registry, token_for):
        officer = await create_officer(registry, token_for(), ZHEJIANG)
        response = await patch(registry, token_for(), officer, {"name": "王五"})
        assert response.status_code == 200
        assert await officer_events(registry, officer["id"]) == []

    async def test_a_refused_change_is_no_event(self, registry, token_for):
        officer = await create_officer(registry, token_for(), ZHEJIANG)
        stale = await patch(registry, token_for(), officer, {"active": False}, etag='"0"')
        assert stale.status_code == 412
        outside = await patch(registry, token_for(SHANDONG), officer, {"active": False}, etag='"1"')
        assert outside.status_code == 404
        assert await officer_events(registry, officer["id"]) == []

    async def test_each_change_is_its_own_version(self, registry, token_for):
        officer = await create_officer(registry, token_for(), ZHEJIANG)
        first = await patch(registry, token_for(), officer, {"active": False})
        second = await patch(registry, token_for(), officer, {"active": True})
        events = await officer_events(registry, officer["id"])
        assert [(e["aggregate_version"], e["payload"]["active"]) for e in events] == [
            (first.json()["version"], False),
            (second.json()["version"], True),
        ]

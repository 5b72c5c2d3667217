"""The gateway's worker applies `registry.officer.changed`: the officer's login follows the
registry, and tokens issued before the change end at the gateway (within its revocation
refresh). The event is the one the registry wrote; the job is run here in process."""

from __future__ import annotations

from sqlalchemy import select

from gateway.app import INBOX
from gateway.tasks import WorkerSettings, officer_changed
from services.common.events import Event
from services.common.jobs import handle_event
from services.registry.models import OutboxEvent
from tests.conftest import TEST_ENV, auth
from tests.factories import create_officer
from tests.gateway.test_officer_standing import PROVINCE, password_login, set_officer, stored

OTHER_PROVINCE = {"id": 9, "path": "1.9."}


async def last_officer_event(registry, officer_id: int) -> dict:
    """The registry's latest event about the officer, as the relay hands it to the gateway."""
    async with registry.app.state.sessionmaker() as session:
        row = (
            (
                await session.exec(
                    select(OutboxEvent)
                    .where(
                        OutboxEvent.c.aggregate_type == "officer",
                        OutboxEvent.c.aggregate_id == str(officer_id),
                    )
                    .order_by(OutboxEvent.c.aggregate_version.desc())
                    .limit(1)
                )
            )
            .mappings()
            .one()
        )
    return Event.model_validate(dict(row)).model_dump(mode="json")


async def deliver(gateway, event: dict) -> dict:
    ctx = {
        "service": "gateway",
        "sessionmaker": gateway.app.state.sessionmaker,
        "inbox": INBOX,
        "event_handlers": {"registry.officer.changed": officer_changed},
        "job_try": 1,
    }
    return await handle_event(ctx, event)


async def refresh_revocations(gateway) -> None:
    settings = gateway.app.state.settings
    await gateway.app.state.revocations.refresh(
        gateway.app.state.sessionmaker, settings.token_lifetime_seconds
    )


class TestOfficerChangedEvent:
    def test_the_gateway_worker_consumes_officer_changes(self):
        assert [f.name for f in WorkerSettings.functions if hasattr(f, "name")] == ["handle_event"]
        assert WorkerSettings.queue_name == f"{TEST_ENV['ARQ_QUEUE_PREFIX']}gateway"

    async def test_a_deactivation_ends_the_officers_tokens(self, gateway, registry, make_account, token_for):
        account = await make_account(bureau=PROVINCE)
        token = (await password_login(gateway, account)).json()["access_token"]
        await set_officer(registry, token_for, account.officer_id, {"active": False})
        result = await deliver(gateway, await last_officer_event(registry, account.officer_id))
        assert result["outcome"] == "applied"
        assert (await stored(gateway, account.id)).version == account.version + 1
        await refresh_revocations(gateway)
        refused = await gateway.get("/api/v1/registry/me", headers=auth(token))
        assert refused.status_code == 401
        assert (
            refused.json()["detail"] == "The account changed after this token was issued; obtain a new one."
        )

    async def test_a_move_takes_the_login_along(self, gateway, registry, make_account, token_for):
        account = await make_account(bureau=PROVINCE, roles=("enforcement", "admin"))
        await set_officer(registry, token_for, account.officer_id, {"bureau_id": OTHER_PROVINCE["id"]})
        await deliver(gateway, await last_officer_event(registry, account.officer_id))
        row = await stored(gateway, account.id)
        assert (row.bureau_id, row.bureau_path, row.roles, row.version) == (
            OTHER_PROVINCE["id"],
            OTHER_PROVINCE["path"],
            ["enforcement"],
            account.version + 1,
        )

    async def test_an_older_change_arriving_late_changes_nothing(
        self, gateway, registry, make_account, token_for
    ):
        account = await make_account(bureau=PROVINCE)
        await set_officer(registry, token_for, account.officer_id, {"bureau_id": OTHER_PROVINCE["id"]})
        moved = await last_officer_event(registry, account.officer_id)
        await set_officer(registry, token_for, account.officer_id, {"bureau_id": PROVINCE["id"]})
        back = await last_officer_event(registry, account.officer_id)
        assert (await deliver(gateway, back))["outcome"] == "applied"
        assert (await deliver(gateway, moved))["outcome"] == "stale"
        assert (await deliver(gateway, back))["outcome"] == "duplicate"
        row = await stored(gateway, account.id)
        assert (row.bureau_path, row.version) == (PROVINCE["path"], account.version)

    async def test_an_officer_without_a_login_is_noted(self, gateway, registry, token_for):
        officer = await create_officer(registry, token_for(), PROVINCE)
        await set_officer(registry, token_for, officer["id"], {"active": False})
        event = await last_officer_event(registry, officer["id"])
        assert (await deliver(gateway, event))["outcome"] == "applied"
        listed = await gateway.get(
            "/api/v1/auth/events/inbox",
            params={"aggregate_type": "officer", "aggregate_id": str(officer["id"])},
            headers=auth(token_for()),
        )
        assert [(i["event_id"], i["outcome"], i["reason"]) for i in listed.json()["items"]] == [
            (event["id"], "applied", "the officer has no login")
        ]

"""The audit chain's head checkpointed in Redis (services/common/audit.py): deleting the newest
entries leaves a chain with no break, which only the checkpoint kept outside the database
shows. The tampering happens as an attacker with rights on the database would do it (the
append-only trigger switched off), on a scratch database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from services.common.audit import Checkpoint, CheckpointStore, CheckpointUnavailable
from services.common.auth import Principal, PrincipalKind
from services.common.jobs import checkpoint_audit_chain
from services.registry.models import AUDIT, AuditEntry
from tests.common.test_audit import tamper
from tests.conftest import auth, scratch_registry
from tools.platform import free_port

VERIFY = "/api/v1/registry/audit/verify"
ACTOR = Principal(account_id="auditor-test", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1.")


@pytest.fixture(scope="module")
async def scratch() -> AsyncIterator[httpx.AsyncClient]:
    async with scratch_registry("checkpoint") as client:
        yield client


def store_of(client: httpx.AsyncClient) -> CheckpointStore:
    return client.app.state.audit_checkpoints  # type: ignore[attr-defined]


async def append(client: httpx.AsyncClient, count: int, start: int = 0) -> None:
    async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        for n in range(start, start + count):
            await AUDIT.record(session, ACTOR, "bureau.updated", "bureau", n, {"name": f"局{n}", "n": n})
        await session.commit()


async def ids(client: httpx.AsyncClient) -> list[int]:
    async with client.app.state.sessionmaker() as session:  # type: ignore[attr-defined]
        return list((await session.exec(select(AuditEntry.c.id).order_by(AuditEntry.c.id))).scalars())


@pytest.fixture
async def chain(scratch) -> list[int]:
    """A fresh chain of five entries with no checkpoint yet; returns their ids."""
    await tamper(scratch, "TRUNCATE audit_entry RESTART IDENTITY")
    await store_of(scratch).clear()
    await append(scratch, 5)
    return await ids(scratch)


async def verify(client: httpx.AsyncClient, token: str) -> dict:
    response = await client.get(VERIFY, headers=auth(token))
    assert response.status_code == 200, response.text
    return response.json()


async def worker_checkpoint(client: httpx.AsyncClient) -> dict:
    """The worker's scheduled job, run once with the app's database and checkpoint store."""
    state = client.app.state  # type: ignore[attr-defined]
    ctx = {"sessionmaker": state.sessionmaker, "audit": AUDIT, "audit_checkpoints": state.audit_checkpoints}
    return await checkpoint_audit_chain(ctx)


class TestVerifyWithTheCheckpoint:
    async def test_a_first_verification_checkpoints_the_chain(self, scratch, chain, token_for):
        report = await verify(scratch, token_for())
        assert (report["valid"], report["truncated"], report["entries"]) == (True, False, 5)
        assert report["checkpoint"]["status"] == "none"
        assert report["checkpoint"]["checkpointed"] is True
        newest = await store_of(scratch).newest()
        assert (newest.entries, newest.last_id, newest.hash) == (5, chain[-1], report["head"])

    async def test_deleting_the_newest_entries_is_reported_as_a_truncation(self, scratch, chain, token_for):
        await worker_checkpoint(scratch)
        await tamper(scratch, f"DELETE FROM audit_entry WHERE id IN ({chain[3]}, {chain[4]})")
        report = await verify(scratch, token_for())
        assert (report["valid"], report["truncated"], report["entries"]) == (False, True, 3)
        assert report["head"] is None
        check = report["checkpoint"]
        assert check["status"] == "truncated" and check["checkpointed"] is False
        assert (check["checkpoint"]["entries"], check["checkpoint"]["last_id"]) == (5, chain[4])
        assert "2 were deleted" in check["detail"] or "newest 2" in check["detail"]
        # The truncated chain is not checkpointed over the evidence, by the verification or the worker.
        assert (await store_of(scratch).newest()).entries == 5
        assert await worker_checkpoint(scratch) == {"checkpointed": False, "consistent": False, "entries": 3}
        assert (await store_of(scratch).newest()).entries == 5
        assert (await verify(scratch, token_for()))["truncated"] is True

    async def test_deleting_the_last_entry_alone_is_caught(self, scratch, chain, token_for):
        await verify(scratch, token_for())  # the verification checkpoints too
        await tamper(scratch, f"DELETE FROM audit_entry WHERE id = {chain[4]}")
        report = await verify(scratch, token_for())
        assert (report["valid"], report["truncated"], report["checkpoint"]["status"]) == (
            False,
            True,
            "truncated",
        )

    async def test_entries_deleted_then_new_ones_appended_are_reported(self, scratch, chain, token_for):
        await worker_checkpoint(scratch)
        await tamper(scratch, f"DELETE FROM audit_entry WHERE id IN ({chain[3]}, {chain[4]})")
        await append(scratch, 3, start=10)  # the count is made up again, the chain links anew
        report = await verify(scratch, token_for())
        now = await ids(scratch)
        assert (report["valid"], report["checkpoint"]["status"]) == (False, "diverged")
        assert (report["entries"], report["broken_at"]) == (4, now[4])

    async def test_an_untouched_chain_grown_since_the_checkpoint_is_valid(self, scratch, chain, token_for):
        assert await worker_checkpoint(scratch) == {"checkpointed": True, "consistent": True, "entries": 5}
        await append(scratch, 2, start=5)
        report = await verify(scratch, token_for())
        assert (report["valid"], report["truncated"], report["entries"]) == (True, False, 7)
        check = report["checkpoint"]
        assert (check["status"], check["checkpoint"]["entries"], check["checkpointed"]) == (
            "consistent",
            5,
            True,
        )
        assert (await store_of(scratch).newest()).entries == 7
        # The worker's next round on the grown chain agrees.
        await append(scratch, 1, start=7)
        assert await worker_checkpoint(scratch) == {"checkpointed": True, "consistent": True, "entries": 8}

    async def test_redis_away_the_verification_still_works_and_says_so(self, scratch, chain, token_for):
        away = CheckpointStore(f"redis://127.0.0.1:{free_port()}/0", "audit-checkpoint:away:registry")
        state = scratch.app.state
        present, state.audit_checkpoints = state.audit_checkpoints, away
        try:
            report = await verify(scratch, token_for())
            assert (report["valid"], report["truncated"], report["entries"]) == (True, False, 5)
            check = report["checkpoint"]
            assert check["status"] == "unavailable" and check["checkpointed"] is False
            assert check["detail"].startswith("No checkpoint could be read")
            # The worker's job does not fail either: it says it could not checkpoint.
            outcome = await worker_checkpoint(scratch)
            assert outcome["checkpointed"] is False and "error" in outcome
        finally:
            state.audit_checkpoints = present
            await away.aclose()


class TestStore:
    @pytest.fixture
    async def store(self, run_dir) -> AsyncIterator[CheckpointStore]:
        from tests.conftest import TEST_ENV

        store = CheckpointStore(
            TEST_ENV["REDIS_URL"], f"{TEST_ENV['AUDIT_CHECKPOINT_KEY_PREFIX']}store-test", history=3
        )
        await store.clear()
        yield store
        await store.clear()
        await store.aclose()

    @staticmethod
    def head(entries: int, digest: str = "a") -> Checkpoint:
        from services.common.db import utcnow

        return Checkpoint(entries=entries, last_id=entries, hash=digest * 64, at=utcnow())

    async def test_a_short_history_is_kept_newest_first(self, store):
        for entries in (1, 2, 3, 4, 5):
            assert await store.save(self.head(entries, str(entries)))
        assert [c.entries for c in await store.history_of()] == [5, 4, 3]
        assert (await store.newest()).entries == 5

    async def test_an_older_head_does_not_replace_a_newer_one(self, store):
        assert await store.save(self.head(5))
        assert await store.save(self.head(4)) is False  # a slower writer's older reading
        assert (await store.newest()).entries == 5

    async def test_the_same_head_again_refreshes_the_newest_only(self, store):
        first = self.head(5)
        assert await store.save(first)
        again = self.head(5)
        assert await store.save(again)
        history = await store.history_of()
        assert len(history) == 1 and history[0].at == again.at

    async def test_redis_away_is_an_error_of_its_own(self):
        away = CheckpointStore(f"redis://127.0.0.1:{free_port()}/0", "k")
        try:
            with pytest.raises(CheckpointUnavailable):
                await away.newest()
            with pytest.raises(CheckpointUnavailable):
                await away.save(self.head(1))
        finally:
            await away.aclose()


def test_every_worker_schedules_the_checkpoint_every_few_minutes():
    from services.enforcement.tasks import WorkerSettings as Enforcement
    from services.registry.tasks import WorkerSettings as Registry

    for settings in (Registry, Enforcement):
        [job] = [c for c in settings.cron_jobs if c.name == "cron:checkpoint_audit_chain"]
        assert job.minute == set(range(0, 60, 5)) and job.run_at_startup and job.unique
        assert "checkpoint_audit_chain" in {getattr(f, "__name__", None) for f in settings.functions}

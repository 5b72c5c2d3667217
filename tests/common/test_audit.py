"""The hash-chained, append-only audit log (services/common/audit.py).

Tampering needs the append-only trigger switched off, so it happens on a scratch
database of its own; the run's registry database is only ever appended to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import Text, select, text
from sqlalchemy.exc import DBAPIError

from services.common.audit import _digest
from services.common.auth import Principal, PrincipalKind
from services.registry.models import AUDIT, AuditEntry
from tests.conftest import assert_problem, auth, scratch_registry
from tests.factories import audit_entries, create_bureau, pilot_unit

VERIFY = "/api/v1/registry/audit/verify"
ACTOR = Principal(account_id="auditor-test", kind=PrincipalKind.OFFICER, bureau_id=1, bureau_path="1.")


async def audit_rows(sessionmaker) -> tuple[int, str | None]:
    """(row count, hash of the last row)."""
    async with sessionmaker() as session:
        count = await AUDIT.count(session)
        head = (
            await session.exec(select(AuditEntry.c.hash).order_by(AuditEntry.c.id.desc()).limit(1))
        ).scalar()
    return count, head


async def verify(client: httpx.AsyncClient, token: str) -> dict:
    """The chain's part of the verification (the checkpoint's is tests/common/test_audit_checkpoint.py)."""
    response = await client.get(VERIFY, headers=auth(token))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report.pop("truncated") is False
    report.pop("checkpoint")
    return report


class TestVerifyEndpoint:
    async def test_chain_is_valid_after_changes_through_the_api(self, registry, token_for):
        token = token_for()
        zj_qs = await pilot_unit(registry, token, "quality_supervision", "330000")
        city = await create_bureau(registry, token, zj_qs, "city", "330500")
        county = await create_bureau(registry, token, city, "county", "330502")
        report = await verify(registry, token)
        count, head = await audit_rows(registry.app.state.sessionmaker)
        assert report == {"valid": True, "entries": count, "broken_at": None, "head": head}
        # The two bureaus just created are in the chain that was verified.
        for bureau in (city, county):
            [entry] = await audit_entries(registry, "bureau", bureau["id"])
            assert (entry["action"], entry["data"]["name"]) == ("bureau.created", bureau["name"])

    async def test_non_admin_is_refused(self, registry, token_for):
        response = await registry.get(VERIFY, headers=auth(token_for(roles=("enforcement", "head"))))
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"

    @pytest.mark.parametrize("roles", [("admin",), ("legal",), ("admin", "legal")])
    async def test_a_provincial_administrator_or_legal_officer_is_refused(self, registry, token_for, roles):
        province = {"id": 8, "path": "1.8."}
        response = await registry.get(VERIFY, headers=auth(token_for(province, roles=roles)))
        assert response.status_code == 403
        assert response.json()["type"] == "/problems/role-required"
        assert "entries" not in response.text and "head" not in response.json()

    async def test_the_national_legal_affairs_role_may_verify(self, registry, token_for):
        response = await registry.get(VERIFY, headers=auth(token_for(roles=("legal",), body="legal")))
        assert response.status_code == 200
        assert response.json()["valid"] is True

    async def test_anonymous_is_refused(self, registry):
        assert_problem(await registry.get(VERIFY), 401, "/problems/unauthorized")


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_entry SET actor = 'someone-else'",
            "UPDATE audit_entry SET data = '{}'::jsonb WHERE id = (SELECT max(id) FROM audit_entry)",
            "DELETE FROM audit_entry WHERE id = (SELECT max(id) FROM audit_entry)",
            "DELETE FROM audit_entry",
            "TRUNCATE audit_entry",
        ],
    )
    async def test_database_refuses_to_change_entries(self, registry, statement):
        maker = registry.app.state.sessionmaker
        before = await audit_rows(maker)
        async with maker() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                await session.exec(text(statement))
            await session.rollback()
        assert await audit_rows(maker) == before


class TestConcurrentAppends:
    async def test_twenty_concurrent_writers_keep_one_valid_chain(self, registry, token_for):
        maker = registry.app.state.sessionmaker
        before, _ = await audit_rows(maker)

        async def append(n: int) -> None:
            async with maker() as session:
                await AUDIT.record(session, ACTOR, "test.appended", "test", n, {"n": n})
                await asyncio.sleep(0.001 * (n % 3))  # hold the transaction open a little
                if n % 5 == 4:
                    await session.rollback()  # an abandoned append leaves an id gap, not a break
                else:
                    await session.commit()

        await asyncio.gather(*(append(n) for n in range(20)))
        after, _ = await audit_rows(maker)
        assert after - before == 16
        report = await verify(registry, token_for())
        assert report["valid"] is True and report["entries"] == after

    async def test_concurrent_api_writes_keep_a_valid_chain(self, registry, token_for):
        token = token_for()
        zj_qs = await pilot_unit(registry, token, "quality_supervision", "330000")
        created = await asyncio.gather(
            *(create_bureau(registry, token, zj_qs, "city", "330600") for _ in range(8))
        )
        assert len({b["id"] for b in created}) == 8
        report = await verify(registry, token)
        assert report["valid"] is True
        assert report["entries"] == (await audit_rows(registry.app.state.sessionmaker))[0]


# --- tampering, on a scratch database --------------------------------------------


@pytest.fixture(scope="module")
async def scratch() -> AsyncIterator[httpx.AsyncClient]:
    """A registry app on its own freshly migrated (empty) database."""
    async with scratch_registry("audit") as client:
        yield client


async def tamper(client: httpx.AsyncClient, *statements: str) -> None:
    """Run statements with the append-only trigger switched off."""
    async with client.app.state.engine.begin() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only"))
        for statement in statements:
            await conn.execute(text(statement))
        await conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only"))


@pytest.fixture
async def chain(scratch) -> list[int]:
    """A fresh chain of five entries on the scratch database; returns their ids."""
    await tamper(scratch, "TRUNCATE audit_entry RESTART IDENTITY")
    await scratch.app.state.audit_checkpoints.clear()  # a new chain: the old one's checkpoints go
    async with scratch.app.state.sessionmaker() as session:
        for n in range(5):
            await AUDIT.record(session, ACTOR, "bureau.updated", "bureau", n, {"name": f"局{n}", "n": n})
        await session.commit()
    async with scratch.app.state.sessionmaker() as session:
        return list((await session.exec(select(AuditEntry.c.id).order_by(AuditEntry.c.id))).scalars())


class TestTampering:
    async def test_untouched_chain_is_valid(self, scratch, chain, token_for):
        report = await verify(scratch, token_for())
        assert report["valid"] is True and report["entries"] == 5

    async def test_altered_data_breaks_the_chain_at_that_entry(self, scratch, chain, token_for):
        await tamper(
            scratch, f'UPDATE audit_entry SET data = \'{{"name": "改", "n": 2}}\' WHERE id = {chain[2]}'
        )
        report = await verify(scratch, token_for())
        assert report == {"valid": False, "entries": 2, "broken_at": chain[2], "head": None}

    @pytest.mark.parametrize(
        "column",
        [
            "actor = 'someone-else'",
            "action = 'bureau.created'",
            "entity_id = '99'",
            "at = at + interval '1 second'",
        ],
    )
    async def test_any_altered_column_breaks_the_chain(self, scratch, chain, token_for, column):
        await tamper(scratch, f"UPDATE audit_entry SET {column} WHERE id = {chain[3]}")
        report = await verify(scratch, token_for())
        assert (report["valid"], report["broken_at"]) == (False, chain[3])

    async def test_overwritten_hash_breaks_the_chain_at_that_entry(self, scratch, chain, token_for):
        await tamper(scratch, f"UPDATE audit_entry SET hash = repeat('a', 64) WHERE id = {chain[1]}")
        report = await verify(scratch, token_for())
        assert (report["valid"], report["broken_at"]) == (False, chain[1])

    async def test_consistent_rewrite_of_an_entry_breaks_at_the_next(self, scratch, chain, token_for):
        # The forger recomputes the edited entry's own hash; the next entry still links to the old one.
        async with scratch.app.state.sessionmaker() as session:
            query = select(AuditEntry, AuditEntry.c.data.cast(Text).label("data_text"))
            row = (await session.exec(query.where(AuditEntry.c.id == chain[1]))).one()
        forged = _digest(
            prev_hash=row.prev_hash,
            at=row.at,
            actor="forger",
            actor_kind=row.actor_kind,
            request_id=row.request_id,
            action=row.action,
            entity=row.entity,
            entity_id=row.entity_id,
            data_text=row.data_text,
        )
        await tamper(
            scratch, f"UPDATE audit_entry SET actor = 'forger', hash = '{forged}' WHERE id = {chain[1]}"
        )
        report = await verify(scratch, token_for())
        assert report == {"valid": False, "entries": 2, "broken_at": chain[2], "head": None}

    async def test_deleted_entry_breaks_the_chain_at_the_next(self, scratch, chain, token_for):
        await tamper(scratch, f"DELETE FROM audit_entry WHERE id = {chain[2]}")
        report = await verify(scratch, token_for())
        assert report == {"valid": False, "entries": 2, "broken_at": chain[3], "head": None}

    async def test_swapped_entries_break_the_chain(self, scratch, chain, token_for):
        swapped = (
            "UPDATE audit_entry a SET data = b.data, entity_id = b.entity_id FROM audit_entry b "
            f"WHERE (a.id, b.id) IN (({chain[1]}, {chain[2]}), ({chain[2]}, {chain[1]}))"
        )
        await tamper(scratch, swapped)
        report = await verify(scratch, token_for())
        assert (report["valid"], report["broken_at"]) == (False, chain[1])

    @pytest.mark.parametrize(
        "value",
        [
            1.5,
            0.1 + 0.2,
            1e-7,
            2**53 + 1,
            -17,
            -0.0,
            1e16,
            1e20,
        ],
    )
    async def test_numbers_in_data_keep_the_chain_valid(self, scratch, chain, token_for, value):
        async with scratch.app.state.sessionmaker() as session:
            await AUDIT.record(session, ACTOR, "statistics.recorded", "report", 1, {"value": value})
            await session.commit()
        report = await verify(scratch, token_for())
        assert report["valid"] is True and report["entries"] == 6

"""Every part's Alembic tree upgrades, downgrades to nothing and upgrades again,
and its models match what its migrations build (autogenerate finds no diff)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.models import GatewayModel
from services.common.migrations import MIGRATED_PARTS, downgrade, upgrade
from services.enforcement.models import EnforcementModel
from services.registry.models import RegistryModel
from services.statistics.models import StatisticsModel
from tools.platform import create_databases, drop_databases

METADATA: dict[str, MetaData] = {
    "registry": RegistryModel.metadata,
    "enforcement": EnforcementModel.metadata,
    "statistics": StatisticsModel.metadata,
    "gateway": GatewayModel.metadata,
}


def scratch_url(part: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/cert_{os.getpid()}_scratch_migrations_{part}"


@pytest.fixture
async def scratch(request) -> AsyncIterator[str]:
    """An empty database for one part; dropped afterwards."""
    urls = {"scratch": scratch_url(request.node.callspec.params["part"])}
    await drop_databases(urls)
    await create_databases(urls)
    try:
        yield urls["scratch"]
    finally:
        await drop_databases(urls)


async def schema(url: str) -> dict[str, set[str]]:
    """Tables, triggers and functions of the public schema."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            triggers = set(
                (await conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))).scalars()
            )
            functions = set(
                (
                    await conn.execute(
                        text(
                            "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                            "WHERE n.nspname = 'public'"
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    return {"tables": tables, "triggers": triggers, "functions": functions}


async def model_diff(url: str, metadata: MetaData) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def compare(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, metadata)

            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


def test_every_migrated_part_has_its_metadata_here():
    assert set(MIGRATED_PARTS) == set(METADATA)


@pytest.mark.parametrize("part", MIGRATED_PARTS)
async def test_upgrade_downgrade_upgrade(scratch, part):
    expected = set(METADATA[part].tables)
    assert "audit_entry" in expected

    await asyncio.to_thread(upgrade, part, scratch)
    built = await schema(scratch)
    assert built["tables"] == expected | {"alembic_version"}
    assert "audit_entry_append_only" in built["triggers"]
    assert "audit_entry_append_only" in built["functions"]

    await asyncio.to_thread(downgrade, part, scratch)
    emptied = await schema(scratch)
    assert emptied["tables"] <= {"alembic_version"}
    assert not emptied["triggers"] and not emptied["functions"]

    await asyncio.to_thread(upgrade, part, scratch)
    assert await schema(scratch) == built


@pytest.mark.parametrize("part", MIGRATED_PARTS)
async def test_models_match_migrations(scratch, part):
    await asyncio.to_thread(upgrade, part, scratch)
    diff = await model_diff(scratch, METADATA[part])
    assert diff == [], f"{part}: models and migrations differ: {diff}"


@pytest.mark.parametrize("part", ["statistics"])
async def test_the_diff_check_sees_a_drift(scratch, part):
    """A column the migrations lack shows up, so an empty diff above means something."""
    drifted = MetaData(naming_convention=METADATA[part].naming_convention)
    for table in METADATA[part].tables.values():
        table.to_metadata(drifted)
    drifted.tables["audit_entry"].append_column(Column("undeclared", Integer))
    await asyncio.to_thread(upgrade, part, scratch)
    diff = await model_diff(scratch, drifted)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "undeclared")]

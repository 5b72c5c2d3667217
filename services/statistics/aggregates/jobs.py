"""arq jobs of the facts and aggregates: the rebuild, the hourly refresh of the running
periods, the reconciliation and the bureaus' systems. Each is idempotent: running it twice, or
on two workers, ends with the same figures."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.dates import today
from services.statistics.aggregates.sql import current_periods, rebuild
from services.statistics.facts import bureaus
from services.statistics.facts.reconciliation import reconcile

log = logging.getLogger("statistics.aggregates")


async def rebuild_all(conn_or_session: AsyncConnection | AsyncSession) -> dict[str, int]:
    """Every aggregate recomputed from the facts, in the caller's transaction (commit it)."""
    conn = (
        await conn_or_session.connection() if isinstance(conn_or_session, AsyncSession) else conn_or_session
    )
    return await rebuild(conn, today=today())


async def rebuild_aggregates(ctx: dict[str, Any]) -> dict[str, int]:
    async with ctx["sessionmaker"]() as session:
        result = await rebuild_all(session)
        await session.commit()
    log.info("aggregates rebuilt", extra=result)
    return result


async def refresh_current_periods(ctx: dict[str, Any]) -> dict[str, int]:
    """The running periods' pending and overdue cases move with the day, not with events:
    recompute them for today's and yesterday's periods (yesterday's ended if the month turned),
    from the cases open in those periods only (every other figure moves with events alone)."""
    day = today()
    async with ctx["sessionmaker"]() as session:
        result = await rebuild(
            await session.connection(),
            today=day,
            periods=current_periods(day),
            # The running periods start no earlier than yesterday's year.
            stocks_since=date(day.year - (day.month == 1 and day.day == 1), 1, 1),
        )
        await session.commit()
    log.info("running periods refreshed", extra=result)
    return result


async def reconcile_facts(ctx: dict[str, Any]) -> dict[str, Any]:
    run = await reconcile(ctx["sessionmaker"], ctx["services"], trigger="cron")
    return {
        "run_id": run.id,
        "status": run.status,
        "missing": run.missing,
        "outdated": run.outdated,
        "vanished": run.vanished,
    }


async def refresh_bureaus(ctx: dict[str, Any]) -> dict[str, int]:
    """Facts whose bureau's system was unknown (the registry was away) move under it."""
    async with ctx["sessionmaker"]() as session:
        moved = await bureaus.refresh_unknown_systems(await session.connection(), ctx["services"])
        await session.commit()
    return moved


FUNCTIONS = [rebuild_aggregates, refresh_current_periods, reconcile_facts, refresh_bureaus]

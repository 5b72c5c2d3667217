"""Helpers of the report, pull and changes tests: a bureau tree of the test's own (a city under
the world's province, with two counties), known to statistics' bureau dimension, and aggregate
figures written straight to the statistics database (another part computes them)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx
from sqlalchemy import text

from services.common.auth import Role
from tests.conftest import auth
from tests.factories import create_bureau


@dataclass
class Tree:
    city: dict
    counties: list[dict]
    tokens: dict  # (bureau key, role) -> token maker

    def headers(self, bureau: dict, *roles: str) -> dict[str, str]:
        return auth(self.tokens(bureau, roles=roles or (Role.LEGAL,)))


async def make_tree(registry: httpx.AsyncClient, statistics: httpx.AsyncClient, token_for, world) -> Tree:
    national = token_for()
    city = await create_bureau(registry, national, world.province, "city", "130100")
    counties = [await create_bureau(registry, national, city, "county", "130102") for _ in range(2)]
    async with statistics.app.state.sessionmaker() as session:
        for bureau, parent in ((city, world.province), (counties[0], city), (counties[1], city)):
            await session.exec(
                text(
                    "INSERT INTO bureau_dimension "
                    "(bureau_id, bureau_path, parent_id, level, name, refreshed_at) "
                    "VALUES (:id, :path, :parent, :level, :name, now()) ON CONFLICT (bureau_id) DO NOTHING"
                ),
                params={
                    "id": bureau["id"],
                    "path": bureau["path"],
                    "parent": parent["id"],
                    "level": bureau["level"],
                    "name": bureau["name"],
                },
            )
        await session.commit()
    return Tree(city, counties, token_for)


def kind_of(period: str) -> str:
    return "year" if len(period) == 4 else "quarter" if "Q" in period else "month"


async def set_figures(statistics: httpx.AsyncClient, bureau: dict, period: str, figures: dict) -> None:
    """Write (or overwrite) aggregate figures: ``{(measure, dimension, value): amount}``."""
    async with statistics.app.state.sessionmaker() as session:
        for (measure, dimension, value), amount in figures.items():
            await session.exec(
                text(
                    "INSERT INTO aggregate (bureau_id, period, dimension, value, measure, bureau_path, "
                    "period_kind, amount, updated_at) VALUES (:b, :p, :d, :v, :m, :path, :k, :a, now()) "
                    "ON CONFLICT (bureau_id, period, dimension, value, measure) "
                    "DO UPDATE SET amount = EXCLUDED.amount, updated_at = now()"
                ),
                params={
                    "b": bureau["id"],
                    "p": period,
                    "d": dimension,
                    "v": value,
                    "m": measure,
                    "path": bureau["path"],
                    "k": kind_of(period),
                    "a": Decimal(str(amount)),
                },
            )
        await session.commit()


async def remove_figure(statistics: httpx.AsyncClient, bureau: dict, period: str, key: tuple) -> None:
    measure, dimension, value = key
    async with statistics.app.state.sessionmaker() as session:
        await session.exec(
            text(
                "DELETE FROM aggregate WHERE bureau_id = :b AND period = :p AND dimension = :d "
                "AND value = :v AND measure = :m"
            ),
            params={"b": bureau["id"], "p": period, "d": dimension, "v": value, "m": measure},
        )
        await session.commit()


FIGURES = {
    ("cases_opened", "all", ""): 7,
    ("cases_opened", "subject_type", "enterprise"): 5,
    ("cases_opened", "subject_type", "certification_body"): 2,
    ("fines_decided", "all", ""): "35000.50",
    ("leads_received", "all", ""): 12,
}


def as_list(figures: dict) -> list[dict]:
    """The figures as a report lists them: ordered by measure, dimension, value."""
    out = []
    for (measure, dimension, value), amount in sorted(figures.items()):
        text_amount = format(Decimal(str(amount)).normalize(), "f")
        out.append({"measure": measure, "dimension": dimension, "value": value, "amount": text_amount})
    return out

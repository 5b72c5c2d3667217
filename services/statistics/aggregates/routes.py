"""The aggregates (统计数据) read over HTTP, scoped to the caller's subtree, keyset-paginated."""

# ruff: noqa: S608 - statements composed of this module's constant fragments; every value is bound

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.common.pagination import Page, PageParams, decode_cursor, make_page, page_params
from services.common.problems import NotFound, UnprocessableEntity, problem_responses
from services.common.types import IdQuery
from services.statistics.aggregates.measures import BY_NAME, DIMENSIONS, MEASURES
from services.statistics.deps import PrincipalDep, ReadSessionDep
from services.statistics.facts.bureaus import registry_bureau

PREFIX = "/api/v1/statistics"
router = APIRouter(prefix=PREFIX)
PageDep = Annotated[PageParams, Depends(page_params)]

MeasureName = Literal[tuple(m.name for m in MEASURES)]  # type: ignore[valid-type]
DimensionName = Literal["all", "system", "subject_type", "violation", "penalty_type"]
PeriodKind = Literal["month", "quarter", "year"]
PERIOD_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
PERIOD_PATTERNS = {
    "month": r"^\d{4}-(0[1-9]|1[0-2])$",
    "quarter": r"^\d{4}-Q[1-4]$",
    "year": r"^\d{4}$",
}
PeriodQuery = Annotated[
    str | None,
    Query(
        pattern=PERIOD_PATTERN,
        description="A period: month `2026-05`, quarter `2026-Q2` or year `2026`.",
    ),
]


class AggregateRead(BaseModel):
    bureau_id: int = Field(description="The subtree's root: the figure counts it and every bureau under it")
    bureau_path: str
    period: str = Field(description="`2026-05`, `2026-Q2` or `2026`")
    period_kind: PeriodKind
    dimension: DimensionName
    value: str = Field(description='The dimension\'s value; "" for `all`')
    measure: MeasureName
    unit: Literal["count", "yuan"]
    amount: str = Field(
        description=(
            'A decimal string: a whole number for counts (`"12"`), yuan with two decimals (`"1500.00"`)'
        )
    )
    updated_at: datetime


def _amount(measure: str, amount: Decimal) -> str:
    if BY_NAME[measure].unit == "count":
        return str(int(amount))
    return str(amount.quantize(Decimal("0.01")))


_BUREAU = text(
    """SELECT bureau_path FROM bureau_dimension WHERE bureau_id = :bureau_id
    UNION ALL SELECT bureau_path FROM aggregate WHERE bureau_id = :bureau_id
    LIMIT 1"""
)


@router.get(
    "/aggregates",
    response_model=Page[AggregateRead],
    tags=["aggregates"],
    operation_id="list_aggregates",
    summary="Read the enforcement statistics' figures of a bureau subtree",
    description=(
        "The enforcement statistics (执法统计) of a bureau's subtree (`bureau_id`, default the caller's "
        "bureau; one outside the caller's subtree answers 404 like a missing one): one figure per "
        "period × dimension value × measure, ordered by period, dimension, value and measure. Choose the "
        "periods with `period`, or `period_kind` with an optional `from` / `to` range (keys of that kind); "
        "`dimension` (" + ", ".join(f"`{k}`: {v}" for k, v in DIMENSIONS.items()) + "), `value` and "
        "`measure` (" + ", ".join(f"`{m.name}`" for m in MEASURES) + "; each described in "
        "services/statistics/aggregates/measures.py) narrow it. Amounts are decimal strings: whole "
        'numbers for counts, yuan with two decimals. A figure that fell to zero stays listed as `"0"`; a '
        "bureau with no figure yet answers an empty list (503 when the registry cannot tell whether it "
        "exists)."
    ),
    responses=problem_responses(404, 422, 503),
)
async def list_aggregates(
    request: Request,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: PageDep,
    bureau_id: IdQuery = None,
    period: PeriodQuery = None,
    period_kind: PeriodKind | None = None,
    from_: Annotated[
        PeriodQuery, Query(alias="from", description="First period (with `period_kind`)")
    ] = None,
    to: Annotated[PeriodQuery, Query(description="Last period (with `period_kind`)")] = None,
    dimension: DimensionName | None = None,
    value: Annotated[str | None, Query(max_length=64, description="The dimension's value")] = None,
    measure: MeasureName | None = None,
) -> Page[AggregateRead]:
    if (from_ or to) and period_kind is None:
        raise UnprocessableEntity(
            "`from` and `to` need `period_kind`.",
            errors=[{"loc": "query.period_kind", "message": "required with from/to", "type": "missing"}],
        )
    for name, key in (("from", from_), ("to", to)):
        if key is not None and period_kind is not None and not _matches(period_kind, key):
            raise UnprocessableEntity(
                f"`{name}` is not a {period_kind} key.",
                errors=[{"loc": f"query.{name}", "message": f"not a {period_kind}", "type": "pattern"}],
            )
    target = principal.bureau_id if bureau_id is None else bureau_id
    conn = await session.connection()
    if target == principal.bureau_id:
        path = principal.bureau_path
    else:
        path = (await conn.execute(_BUREAU, {"bureau_id": target})).scalar()
        if path is None:  # no figure yet: the registry knows whether it exists, and where
            found = await registry_bureau(request.app.state.services, target)
            path = found["path"] if found else None
    if path is None or not principal.in_scope(path):
        raise NotFound(f"Bureau {target} not found.")
    where = ["bureau_id = :bureau_id"]
    params: dict = {"bureau_id": target, "limit": page.limit + 1}
    for column, given in (
        ("period", period),
        ("period_kind", period_kind),
        ("dimension", dimension),
        ("value", value),
        ("measure", measure),
    ):
        if given is not None:
            where.append(f"{column} = :{column}")
            params[column] = given
    if from_ is not None:
        where.append("period >= :from_")
        params["from_"] = from_
    if to is not None:
        where.append("period <= :to")
        params["to"] = to
    after = decode_cursor(page.cursor, str, str, str, str)
    if after is not None:
        where.append("(period, dimension, value, measure) > (:a_period, :a_dimension, :a_value, :a_measure)")
        params.update(zip(("a_period", "a_dimension", "a_value", "a_measure"), after, strict=True))
    rows = (
        (
            await conn.execute(
                text(
                    "SELECT bureau_id, bureau_path, period, period_kind, dimension, value, measure, amount, "
                    "updated_at "
                    f"FROM aggregate WHERE {' AND '.join(where)} "
                    "AND measure = ANY(CAST(:measures AS text[])) "
                    "ORDER BY period, dimension, value, measure LIMIT :limit"
                ),
                {**params, "measures": [m.name for m in MEASURES]},
            )
        )
        .mappings()
        .all()
    )
    rows, next_cursor = make_page(
        list(rows), page.limit, lambda r: [r["period"], r["dimension"], r["value"], r["measure"]]
    )
    items = [
        AggregateRead(
            **{k: r[k] for k in ("bureau_id", "bureau_path", "period", "period_kind", "dimension", "value")},
            measure=r["measure"],
            unit=BY_NAME[r["measure"]].unit,
            amount=_amount(r["measure"], r["amount"]),
            updated_at=r["updated_at"],
        )
        for r in rows
    ]
    return Page(items=items, next_cursor=next_cursor)


def _matches(kind: str, key: str) -> bool:
    import re

    return re.match(PERIOD_PATTERNS[kind], key) is not None

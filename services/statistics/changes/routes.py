"""The changes-since feed (变更订阅) for provincial systems that mirror the statistics.

``GET /api/v1/statistics/changes?since=<cursor>`` answers the changes after the cursor, oldest
first: every aggregate figure written or removed (its current state: a key appears again each
time it changes) and every report revision submitted. A mirror applies the items in order and
keeps ``next_cursor`` for its next call; the feed never skips a change, even one whose
transaction commits after a younger one (see ``repository.py``). A change is served once every
transaction of the statistics database older than it has ended, so a long-running transaction
there delays the feed (never loses from it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from services.common.db import like_prefix
from services.common.pagination import CURSOR_MAX_LENGTH, CURSOR_PATTERN, decode_cursor, encode_cursor
from services.common.problems import problem_responses
from services.statistics.changes import repository as repo
from services.statistics.deps import DatabaseDep, PrincipalDep
from services.statistics.reports.service import amount_text

router = APIRouter(prefix="/api/v1/statistics", tags=["changes"])
MAX_LIMIT = 1000
DEFAULT_LIMIT = 200
START = (-1, -1, 0, "", "", "", "")


class ChangeRead(BaseModel):
    kind: Literal["aggregate", "report"]
    bureau_id: int
    bureau_path: str
    period: str
    period_kind: str
    dimension: str | None = Field(description="aggregate: the dimension (`all` or a breakdown)")
    value: str | None = Field(description="aggregate: the dimension's value (`` for `all`)")
    measure: str | None = Field(description="aggregate: the measure")
    amount: str | None = Field(description="aggregate: the figure now; null when it was removed")
    removed: bool = Field(description="aggregate: the figure no longer exists")
    report_id: int | SkipJsonSchema[None] = Field(
        default=None,
        description="report: the submitted revision (read it at /reports/{id}); absent otherwise",
    )
    revision: int | None
    supersedes_id: int | None
    changed_at: datetime | None


class ChangePage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "kind": "aggregate",
                            "bureau_id": 8,
                            "bureau_path": "1.8.",
                            "period": "2026-Q1",
                            "period_kind": "quarter",
                            "dimension": "all",
                            "value": "",
                            "measure": "cases_opened",
                            "amount": "12",
                            "removed": False,
                            "revision": None,
                            "supersedes_id": None,
                            "changed_at": "2026-04-01T02:00:00Z",
                        },
                        {
                            "kind": "report",
                            "bureau_id": 8,
                            "bureau_path": "1.8.",
                            "period": "2026-Q1",
                            "period_kind": "quarter",
                            "dimension": None,
                            "value": None,
                            "measure": None,
                            "amount": None,
                            "removed": False,
                            "report_id": 31,
                            "revision": 1,
                            "supersedes_id": None,
                            "changed_at": "2026-04-10T06:30:00Z",
                        },
                    ],
                    "next_cursor": "WzIsMTI4LDAsIiIsIiIsIiIsIiJd",
                    "more": False,
                }
            ]
        }
    )

    items: list[ChangeRead] = Field(description="`report_id` is left out of aggregate changes")
    next_cursor: str | None = Field(
        description=(
            "Pass as `since` on the next call: the position after the last item (the `since` sent "
            "when nothing new is ready). Never null once a change was served."
        )
    )
    more: bool = Field(description="More changes were ready than `limit`: call again right away")


KIND_NAMES = ("aggregate", "aggregate", "report")


@router.get(
    "/changes",
    response_model=ChangePage,
    operation_id="list_statistics_changes",
    summary="Changes of the statistics since a cursor (for mirrors)",
    description=(
        "The changes-since feed (变更订阅) of the principal's subtree for provincial systems mirroring "
        "the statistics: every aggregate figure written or removed and every statistical report "
        "(认证执法统计报表) revision submitted, in the order to apply them. Pass the previous "
        "answer's `next_cursor` as `since`; without `since` the feed starts from the beginning. "
        "It never skips a change, even when transactions commit out of order: a change is served "
        f"once every older transaction has ended. `limit` at most {MAX_LIMIT}."
    ),
    responses=problem_responses(),
)
async def list_changes(
    database: DatabaseDep,
    principal: PrincipalDep,
    since: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=CURSOR_MAX_LENGTH,
            pattern=CURSOR_PATTERN,
            description="The `next_cursor` of the previous answer, unchanged; omit it to start over.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most {MAX_LIMIT}")] = DEFAULT_LIMIT,
) -> Response:
    after = decode_cursor(since, int, int, int, str, str, str, str) if since else START
    async with database.driver() as conn:
        rows = await repo.changes(conn, tuple(after), like_prefix(principal.bureau_path), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for r in rows:
        item = {
            "kind": KIND_NAMES[r["kind"]],
            "bureau_id": r["bureau_id"],
            "bureau_path": r["bureau_path"],
            "period": r["period"],
            "period_kind": r["period_kind"],
            "dimension": r["dimension"],
            "value": r["value"],
            "measure": r["measure"],
            "amount": None if r["amount"] is None else amount_text(r["amount"]),
            "removed": r["kind"] == 1,
            "revision": r["revision"],
            "supersedes_id": r["supersedes_id"],
            "changed_at": r["at"],
        }
        if r["report_id"] is not None:
            item["report_id"] = r["report_id"]
        items.append(item)
    if rows:
        last = rows[-1]
        next_cursor = encode_cursor(
            [last["txid"], last["kind"], last["k0"], last["k1"], last["k2"], last["k3"], last["k4"]]
        )
    else:
        next_cursor = since
    body = {"items": items, "next_cursor": next_cursor, "more": more}
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")

"""The changes-since feed: every aggregate change and report submission, in an order a mirror can
apply, never skipping a change even when transactions commit out of order."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from tests.conftest import assert_problem
from tests.statistics.reporting import FIGURES, make_tree, remove_figure, set_figures

URL = "/api/v1/statistics/changes"


@pytest.fixture
async def tree(registry, statistics, token_for, world):
    return await make_tree(registry, statistics, token_for, world)


async def drain(statistics, headers, since=None, limit=1000):
    """Every change ready after ``since``: (items, the cursor to continue from)."""
    items = []
    while True:
        params = {"limit": limit, **({"since": since} if since else {})}
        response = await statistics.get(URL, params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        since = page["next_cursor"]
        if not page["more"]:
            return items, since


def key(item):
    if item["kind"] == "report":
        return ("report", item["report_id"])
    return (item["bureau_id"], item["period"], item["dimension"], item["value"], item["measure"])


async def eventually(statistics, headers, since, wanted: set, seconds: float = 30):
    """Drain from ``since`` until every key of ``wanted`` came (the feed waits for every older
    transaction on the server to end, other test runs' included)."""
    deadline, seen = time.monotonic() + seconds, []
    while True:
        items, since = await drain(statistics, headers, since)
        seen += items
        if wanted <= {key(i) for i in seen} or time.monotonic() > deadline:
            return seen, since
        await asyncio.sleep(0.2)


def raw_url(statistics) -> str:
    return statistics.app.state.settings.database_url.replace("postgresql+asyncpg://", "postgresql://")


INSERT = (
    "INSERT INTO aggregate (bureau_id, period, dimension, value, measure, bureau_path, period_kind, amount, "
    "updated_at) VALUES ($1, $2, 'all', '', $3, $4, 'month', $5, now())"
)


class TestFeed:
    async def test_aggregate_changes_and_submissions_in_scope(self, statistics, tree):
        a, b = tree.counties
        mine = tree.headers(a)
        await set_figures(statistics, a, "2026-06", FIGURES)
        await set_figures(statistics, b, "2026-06", FIGURES)
        items, cursor = await eventually(
            statistics, mine, None, {(a["id"], "2026-06", "all", "", "cases_opened")}
        )
        assert {key(i) for i in items} == {(a["id"], "2026-06", *k[1:], k[0]) for k in FIGURES}
        assert all(i["bureau_path"].startswith(a["path"]) for i in items)
        opened = next(i for i in items if i["measure"] == "cases_opened" and i["dimension"] == "all")
        assert (opened["kind"], opened["amount"], opened["removed"], opened["period_kind"]) == (
            "aggregate",
            "7",
            False,
            "month",
        )

        # The city sees both counties' figures.
        city_items, _ = await eventually(
            statistics, tree.headers(tree.city), None, {(b["id"], "2026-06", "all", "", "cases_opened")}
        )
        assert {i["bureau_id"] for i in city_items} >= {a["id"], b["id"]}

        # Rewriting the same amount is no change; another amount is, once.
        await set_figures(statistics, a, "2026-06", FIGURES)
        await set_figures(statistics, a, "2026-06", {("cases_opened", "all", ""): 9})
        wanted = {(a["id"], "2026-06", "all", "", "cases_opened")}
        items, cursor = await eventually(statistics, mine, cursor, wanted)
        assert [(i["measure"], i["amount"]) for i in items] == [("cases_opened", "9")]

        # A removal is a change too, and writing the figure again replaces it.
        await remove_figure(statistics, a, "2026-06", ("leads_received", "all", ""))
        items, cursor = await eventually(
            statistics, mine, cursor, {(a["id"], "2026-06", "all", "", "leads_received")}
        )
        assert [(i["measure"], i["removed"], i["amount"]) for i in items] == [("leads_received", True, None)]
        await set_figures(statistics, a, "2026-06", {("leads_received", "all", ""): 3})
        items, cursor = await eventually(
            statistics, mine, cursor, {(a["id"], "2026-06", "all", "", "leads_received")}
        )
        assert [(i["measure"], i["removed"], i["amount"]) for i in items] == [("leads_received", False, "3")]

        # A submission (the draft is not a change a mirror hears of).
        draft = await statistics.post(
            "/api/v1/statistics/reports", json={"bureau_id": a["id"], "period": "2026-06"}, headers=mine
        )
        await asyncio.sleep(0.3)
        assert (await drain(statistics, mine, cursor))[0] == []
        await statistics.post(
            f"/api/v1/statistics/reports/{draft.json()['id']}/submission",
            headers={**mine, "If-Match": draft.headers["ETag"]},
        )
        items, cursor = await eventually(statistics, mine, cursor, {("report", draft.json()["id"])})
        assert [(i["kind"], i["report_id"], i["revision"], i["period"]) for i in items] == [
            ("report", draft.json()["id"], 1, "2026-06")
        ]
        assert items[0]["changed_at"] is not None

    async def test_pages_of_one_give_the_same_sequence(self, statistics, tree):
        a = tree.counties[0]
        await set_figures(statistics, a, "2026-07", FIGURES)
        await set_figures(statistics, a, "2026-08", FIGURES)
        whole, _ = await eventually(
            statistics, tree.headers(a), None, {(a["id"], "2026-08", "all", "", "cases_opened")}
        )
        paged, _ = await drain(statistics, tree.headers(a), None, limit=1)
        assert [key(i) for i in paged[: len(whole)]] == [key(i) for i in whole]
        assert len({key(i) for i in whole}) == len(whole) == 2 * len(FIGURES)

    async def test_transactions_committing_out_of_order_skip_nothing(self, statistics, tree):
        county = tree.counties[0]
        headers = tree.headers(county)
        await set_figures(statistics, county, "2026-09", {("warm_up", "all", ""): 1})
        _, cursor = await eventually(
            statistics, headers, None, {(county["id"], "2026-09", "all", "", "warm_up")}
        )

        early = await asyncpg.connect(raw_url(statistics))
        try:
            # The older transaction writes first and stays open…
            transaction = early.transaction()
            await transaction.start()
            await early.execute(INSERT, county["id"], "2026-09", "early", county["path"], 1)
            early_txid = await early.fetchval("SELECT pg_current_xact_id()::text::bigint")
            # …while a younger one writes and commits.
            await set_figures(statistics, county, "2026-09", {("late", "all", ""): 2})
            async with statistics.app.state.sessionmaker() as session:
                from sqlalchemy import text

                late_txid = (
                    await session.exec(
                        text("SELECT changed_txid FROM aggregate WHERE bureau_id = :b AND measure = 'late'"),
                        params={"b": county["id"]},
                    )
                ).scalar_one()
            assert late_txid > early_txid
            # A cursor following committed rows by txid would hand out `late` now and then step
            # over `early`; the feed holds everything from the oldest running transaction on.
            await asyncio.sleep(0.3)
            held, held_cursor = await drain(statistics, headers, cursor)
            assert held == []
            assert held_cursor == cursor
            await transaction.commit()
        finally:
            await early.close()

        items, _ = await eventually(
            statistics,
            headers,
            cursor,
            {(county["id"], "2026-09", "all", "", "early"), (county["id"], "2026-09", "all", "", "late")},
        )
        assert [i["measure"] for i in items] == ["early", "late"]  # in the order they began

    async def test_a_transaction_of_another_database_does_not_hold_the_feed(self, statistics, registry, tree):
        county = tree.counties[1]
        headers = tree.headers(county)
        other = await asyncpg.connect(raw_url(registry))
        try:
            transaction = other.transaction()
            await transaction.start()
            other_txid = await other.fetchval("SELECT pg_current_xact_id()::text::bigint")
            await set_figures(statistics, county, "2026-10", {("after_other", "all", ""): 1})
            items, _ = await eventually(
                statistics, headers, None, {(county["id"], "2026-10", "all", "", "after_other")}, seconds=10
            )
            assert [i["measure"] for i in items] == ["after_other"]
            assert (
                await other.fetchval("SELECT pg_current_xact_id()::text::bigint") == other_txid
            )  # still open
            await transaction.rollback()
        finally:
            await other.close()

    @pytest.mark.parametrize("since", ["bm9wZQ", "W10", "WzEsMiwzXQ", "%%%", "WzEsMCwxLCIiLCIiLCIiLDFd"])
    async def test_bad_cursors(self, statistics, tree, since):
        response = await statistics.get(URL, params={"since": since}, headers=tree.headers(tree.city))
        assert_problem(response, 422, "/problems/validation-error")

    @pytest.mark.parametrize("limit", [0, 1001, -1, "x"])
    async def test_bad_limits(self, statistics, tree, limit):
        response = await statistics.get(URL, params={"limit": limit}, headers=tree.headers(tree.city))
        assert_problem(response, 422, "/problems/validation-error")

    async def test_needs_a_token(self, statistics):
        assert_problem(await statistics.get(URL), 401, "/problems/unauthorized")

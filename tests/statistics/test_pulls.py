"""Scheduled pulls: stable URLs per bureau and period, as JSON, CSV and XLSX, with strong ETags
from the content and conditional GET (304)."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from services.common.auth import Role
from tests.conftest import assert_problem
from tests.factories import same_problem
from tests.statistics.reporting import FIGURES, as_list, make_tree, set_figures

BASE = "/api/v1/statistics/reports"


@pytest.fixture
async def tree(registry, statistics, token_for, world):
    return await make_tree(registry, statistics, token_for, world)


def content_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


async def submit_report(statistics, tree, bureau, period):
    draft = await statistics.post(
        BASE, json={"bureau_id": bureau["id"], "period": period}, headers=tree.headers(bureau)
    )
    assert draft.status_code == 201, draft.text
    response = await statistics.post(
        f"{BASE}/{draft.json()['id']}/submission",
        headers={**tree.headers(bureau), "If-Match": draft.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestJson:
    async def test_provisional_until_submitted_then_frozen(self, statistics, tree):
        county = tree.counties[0]
        url = f"{BASE}/{county['id']}/2026-04"
        await set_figures(statistics, county, "2026-04", FIGURES)
        first = await statistics.get(url, headers=tree.headers(county, Role.SYSTEM))
        assert first.status_code == 200, first.text
        body = first.json()
        assert (body["state"], body["revision"], "id" in body) == ("provisional", None, False)
        assert body["figures"] == as_list(FIGURES)
        assert first.headers["ETag"] == content_etag(first.content)
        assert first.headers["Cache-Control"] == "private, no-cache"

        # Nothing changed: 304, no body, the same ETag.
        same = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": first.headers["ETag"]}
        )
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["ETag"] == first.headers["ETag"]

        # A figure changes: 200 with a new ETag.
        await set_figures(statistics, county, "2026-04", {("cases_opened", "all", ""): 8})
        changed = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": first.headers["ETag"]}
        )
        assert changed.status_code == 200
        assert changed.headers["ETag"] != first.headers["ETag"]

        # Submitted: the pull answers the submitted revision, which later figures never change.
        submitted = await submit_report(statistics, tree, county, "2026-04")
        pulled = await statistics.get(url, headers=tree.headers(tree.city))
        assert pulled.json() == submitted
        await set_figures(statistics, county, "2026-04", {("cases_opened", "all", ""): 100})
        still = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": pulled.headers["ETag"]}
        )
        assert still.status_code == 304

        # A correction submitted: the newest revision, a new ETag.
        correction = await statistics.post(
            f"{BASE}/{submitted['id']}/corrections", json={"reason": "更正"}, headers=tree.headers(county)
        )
        await statistics.post(
            f"{BASE}/{correction.json()['id']}/submission",
            headers={**tree.headers(county), "If-Match": correction.headers["ETag"]},
        )
        newest = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": pulled.headers["ETag"]}
        )
        assert newest.status_code == 200
        assert newest.json()["revision"] == 2
        assert {"measure": "cases_opened", "dimension": "all", "value": "", "amount": "100"} in newest.json()[
            "figures"
        ]

    async def test_if_none_match_lists_and_wildcards(self, statistics, tree):
        county = tree.counties[1]
        await set_figures(statistics, county, "2026-Q2", FIGURES)
        url = f"{BASE}/{county['id']}/2026-Q2"
        first = await statistics.get(url, headers=tree.headers(county))
        tag = first.headers["ETag"]
        for header in (f'"x", {tag}', f"W/{tag}", "*"):
            again = await statistics.get(url, headers={**tree.headers(county), "If-None-Match": header})
            assert again.status_code == 304, header
        other = await statistics.get(url, headers={**tree.headers(county), "If-None-Match": '"x"'})
        assert other.status_code == 200

    async def test_a_bureau_with_nothing_yet(self, statistics, tree):
        response = await statistics.get(
            f"{BASE}/{tree.counties[1]['id']}/2026", headers=tree.headers(tree.city)
        )
        assert response.status_code == 200
        assert (response.json()["state"], response.json()["figures"]) == ("provisional", [])
        assert response.json()["due_on"] == "2027-01-31"

    async def test_a_bureau_statistics_has_not_heard_of(self, statistics, registry, tree, token_for):
        from tests.factories import create_bureau

        fresh = await create_bureau(registry, token_for(), tree.city, "county", "130104")
        response = await statistics.get(f"{BASE}/{fresh['id']}/2026-04", headers=tree.headers(tree.city))
        assert response.status_code == 200, response.text
        assert (response.json()["state"], response.json()["bureau_path"]) == ("provisional", fresh["path"])
        assert response.json()["bureau_name"] == fresh["name"]
        hidden = await statistics.get(f"{BASE}/{fresh['id']}/2026-04", headers=tree.headers(tree.counties[0]))
        assert_problem(hidden, 404, "/problems/not-found")

    async def test_scope(self, statistics, tree):
        a, b = tree.counties
        await set_figures(statistics, a, "2026-04", FIGURES)
        hidden = await statistics.get(f"{BASE}/{a['id']}/2026-04", headers=tree.headers(b))
        missing = await statistics.get(f"{BASE}/999999999/2026-04", headers=tree.headers(b))
        assert_problem(hidden, 404, "/problems/not-found")
        assert same_problem(hidden.json(), a["id"]) == same_problem(missing.json(), 999999999)
        for suffix in (".csv", ".xlsx"):
            assert_problem(
                await statistics.get(f"{BASE}/{a['id']}/2026-04{suffix}", headers=tree.headers(b)),
                404,
                "/problems/not-found",
            )
        # A submitted report of another subtree stays hidden as well.
        await submit_report(statistics, tree, a, "2026-04")
        assert_problem(
            await statistics.get(f"{BASE}/{a['id']}/2026-04", headers=tree.headers(b)),
            404,
            "/problems/not-found",
        )
        assert_problem(await statistics.get(f"{BASE}/{a['id']}/2026-04"), 401, "/problems/unauthorized")

    @pytest.mark.parametrize(
        "period",
        ["2026-13", "2026-Q5", "2026-4", "2026-04.pdf", "x", "2026-04.csv.csv", "9999", "9999-12.xlsx"],
    )
    async def test_bad_periods(self, statistics, tree, period):
        # A pull URL names a real period; anything else is no URL of this service.
        response = await statistics.get(f"{BASE}/{tree.city['id']}/{period}", headers=tree.headers(tree.city))
        assert_problem(response, 404, "/problems/not-found")

    async def test_the_steps_of_a_report_are_not_pull_urls(self, statistics, tree):
        response = await statistics.get(f"{BASE}/1/submission", headers=tree.headers(tree.city))
        assert_problem(response, 405, "/problems/method-not-allowed")
        assert response.headers["Allow"] == "POST"


class TestCsv:
    async def test_csv_with_its_own_etag(self, statistics, tree):
        county = tree.counties[0]
        await set_figures(statistics, county, "2026-05", FIGURES)
        url = f"{BASE}/{county['id']}/2026-05.csv"
        response = await statistics.get(url, headers=tree.headers(county))
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [(r["measure"], r["dimension"], r["value"], r["amount"]) for r in rows] == [
            (f["measure"], f["dimension"], f["value"], f["amount"]) for f in as_list(FIGURES)
        ]
        assert {(r["bureau_id"], r["period"], r["state"], r["revision"]) for r in rows} == {
            (str(county["id"]), "2026-05", "provisional", "")
        }
        assert response.headers["ETag"] == content_etag(response.content)
        json_tag = (
            await statistics.get(f"{BASE}/{county['id']}/2026-05", headers=tree.headers(county))
        ).headers["ETag"]
        assert response.headers["ETag"] != json_tag
        same = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": response.headers["ETag"]}
        )
        assert (same.status_code, same.content) == (304, b"")
        await set_figures(statistics, county, "2026-05", {("leads_received", "all", ""): 13})
        changed = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": response.headers["ETag"]}
        )
        assert changed.status_code == 200
        assert changed.headers["ETag"] != response.headers["ETag"]


class TestXlsx:
    async def test_workbook_with_a_trend_chart(self, statistics, tree):
        county = tree.counties[0]
        for month, opened in (("2026-01", 2), ("2026-02", 5), ("2026-03", 7)):
            await set_figures(statistics, county, month, {**FIGURES, ("cases_opened", "all", ""): opened})
        await submit_report(statistics, tree, county, "2026-02")
        await set_figures(
            statistics, county, "2026-02", {("cases_opened", "all", ""): 50}
        )  # after submission
        url = f"{BASE}/{county['id']}/2026-03.xlsx"
        response = await statistics.get(url, headers=tree.headers(county))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        book = load_workbook(io.BytesIO(response.content))
        assert book.sheetnames == ["报表 figures", "趋势 trend data", "趋势图 trend"]
        assert len(book.chartsheets) == 1 and len(book.chartsheets[0]._charts) == 1
        trend = [list(r) for r in book["趋势 trend data"].iter_rows(values_only=True)]
        assert trend[0] == ["period", "leads_received", "cases_opened", "fines_decided"]
        # January and March live, February as submitted (5, not the later 50).
        assert [row[:3] for row in trend[1:]] == [["2026-01", 12, 2], ["2026-02", 12, 5], ["2026-03", 12, 7]]
        figures = [r for r in book["报表 figures"].iter_rows(values_only=True)]
        assert ("fines_decided", "all", None, 35000.5) in figures or (
            "fines_decided",
            "all",
            "",
            35000.5,
        ) in figures

        # The same content, the same bytes and ETag, in another process too.
        again = await statistics.get(url, headers=tree.headers(county))
        assert again.content == response.content
        assert response.headers["ETag"] == content_etag(response.content)
        conditional = await statistics.get(
            url, headers={**tree.headers(county), "If-None-Match": response.headers["ETag"]}
        )
        assert conditional.status_code == 304

    def test_rendering_is_the_same_in_another_process(self):
        script = (
            "import hashlib, datetime\n"
            "from services.statistics.reports.render import xlsx_body\n"
            "doc = {'bureau_id': 1, 'bureau_name': 'x', 'period': '2026-02', 'state': 'submitted',\n"
            "       'revision': 1, 'due_on': datetime.date(2026, 3, 10),\n"
            "       'figures': [{'measure': 'm', 'dimension': 'all', 'value': '', 'amount': '3'}]}\n"
            "trend = [('2026-01', {'m': '1'}), ('2026-02', {'m': '3'})]\n"
            "print(hashlib.sha256(xlsx_body(doc, trend)).hexdigest())\n"
        )
        runs = {
            subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            for _ in range(2)
        }
        assert len(runs) == 1

"""The published inspection results (一公开): no token, no personal data, nothing unpublished,
ETag and 304, JSON and CSV, a rate limit per client address."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from datetime import date

import chinese_calendar
import pytest

from services.registry.app import create_app
from services.registry.config import RegistrySettings
from tests.conftest import _app_client, assert_problem, auth
from tests.factories import chain_of
from tests.registry.plan_tasks_factory import drawn_plan, drawn_task, plan_network

PUBLIC = "/api/v1/registry/public/inspection-results"
TASKS = "/api/v1/registry/inspection-tasks"


def public_settings(**values) -> RegistrySettings:
    """Settings of an app of the module's own: its own rate counters (test runs share Redis)."""
    return RegistrySettings(public_rate_key_prefix=f"test-public-rate:{uuid.uuid4().hex}:", **values)


@pytest.fixture(scope="module")
async def public():
    async for client in _app_client(create_app(public_settings(public_rate_limit=10_000)), "http://public"):
        yield client


@pytest.fixture(scope="module")
async def published(registry, token_for):
    """A plan of a province of its own: one task done compliant, one done non-compliant, one
    open; and a plan of another year with one done task."""
    network = await plan_network(registry, token_for())
    officers = [network["officers"]["county"], network["officers"]["city"]]
    plan = await drawn_plan(registry, network["unit"])
    subjects = [(await chain_of(registry, network["unit"]))["enterprise"] for _ in range(3)]
    tasks = [await drawn_task(registry, plan, s, officers, draw_order=i) for i, s in enumerate(subjects, 1)]
    token = token_for(network["county"], roles=("supervision",), officer_id=officers[0]["id"])
    for task, outcome, day in (
        (tasks[0], "compliant", "2026-09-25"),
        (tasks[1], "non_compliant", "2026-03-10"),
    ):
        response = await registry.post(
            f"{TASKS}/{task.id}/result",
            json={
                "inspected_on": day,
                "findings": "抽查记录：" + network["officers"]["city"]["name"],
                "result": outcome,
            },
            headers={**auth(token), "If-Match": '"1"'},
        )
        assert response.status_code == 201, response.text
    earlier = await drawn_plan(
        registry, network["unit"], subject_type="certificate", year=2025, drawn_on=date(2025, 4, 1)
    )
    old_subject = (await chain_of(registry, network["unit"]))["certificate"]
    old_task = await drawn_task(registry, earlier, old_subject, officers)
    response = await registry.post(
        f"{TASKS}/{old_task.id}/result",
        json={"inspected_on": "2025-05-06", "findings": "现场检查未见异常", "result": "compliant"},
        headers={**auth(token), "If-Match": '"1"'},
    )
    assert response.status_code == 201, response.text
    return {
        "network": network,
        "plan": plan,
        "earlier": earlier,
        "subjects": subjects,
        "tasks": tasks,
        "old_task": old_task,
        "old_subject": old_subject,
    }


async def all_items(client, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {**params, "limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await client.get(PUBLIC, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


class TestPublishedResults:
    async def test_done_tasks_are_published_without_a_token(self, public, published):
        items = await all_items(public, plan_id=published["plan"].id)
        tasks, subjects, plan = published["tasks"], published["subjects"], published["plan"]
        unit = published["network"]["unit"]
        assert items == [
            {
                "task_id": tasks[0].id,
                "plan_id": plan.id,
                "plan_title": plan.title,
                "year": 2026,
                "bureau_id": unit["id"],
                "bureau_name": unit["name"],
                "subject_type": "enterprise",
                "subject_id": subjects[0].id,
                "subject_name": subjects[0].name,
                "inspected_on": "2026-09-25",
                "result": "compliant",
                "publication_due_on": "2026-10-29",
            },
            {
                "task_id": tasks[1].id,
                "plan_id": plan.id,
                "plan_title": plan.title,
                "year": 2026,
                "bureau_id": unit["id"],
                "bureau_name": unit["name"],
                "subject_type": "enterprise",
                "subject_id": subjects[1].id,
                "subject_name": subjects[1].name,
                "inspected_on": "2026-03-10",
                "result": "non_compliant",
                "publication_due_on": "2026-04-08",
            },
        ]

    def test_the_publication_due_date_counts_working_days_of_the_holiday_calendar(self):
        from services.registry.plans.public import publication_due

        due = publication_due(date(2026, 9, 25), 20)
        # National Day (国庆) falls inside: 20 weekdays would end on 23 October.
        assert len(chinese_calendar.get_workdays(date(2026, 9, 26), due)) == 20
        assert chinese_calendar.is_workday(due) and due == date(2026, 10, 29)
        assert publication_due(date(2026, 12, 20), 20) is None  # beyond the calendar

    async def test_no_personal_data_and_nothing_unpublished(self, public, published):
        body = (await public.get(PUBLIC, params={"plan_id": published["plan"].id})).text
        csv_body = (await public.get(f"{PUBLIC}.csv", params={"plan_id": published["plan"].id})).text
        for text in (body, csv_body):
            for officer in published["network"]["officers"].values():
                assert officer["name"] not in text
                assert officer["credential_number"] not in text
            assert "officer" not in text
            assert "抽查记录" not in text  # the findings stay internal
            assert published["subjects"][2].name not in text  # the open task
        ids = {
            i["task_id"]
            for i in (await public.get(PUBLIC, params={"plan_id": published["plan"].id})).json()["items"]
        }
        assert published["tasks"][2].id not in ids

    async def test_filters(self, public, published):
        bureau = published["network"]["unit"]["id"]
        by_bureau = await all_items(public, bureau_id=bureau)
        assert [i["task_id"] for i in by_bureau] == [
            published["tasks"][0].id,
            published["tasks"][1].id,
            published["old_task"].id,
        ]
        (old,) = await all_items(public, bureau_id=bureau, year=2025)
        assert (old["plan_id"], old["subject_type"], old["subject_name"]) == (
            published["earlier"].id,
            "certificate",
            published["old_subject"].number,
        )
        assert await all_items(public, plan_id=published["plan"].id, year=2025) == []
        assert await all_items(public, bureau_id=published["network"]["other"]["id"]) == []

    async def test_csv(self, public, published):
        response = await public.get(f"{PUBLIC}.csv", params={"bureau_id": published["network"]["unit"]["id"]})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["etag"]
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [int(r["task_id"]) for r in rows] == [
            published["tasks"][0].id,
            published["tasks"][1].id,
            published["old_task"].id,
        ]
        assert rows[1]["result"] == "non_compliant" and rows[1]["publication_due_on"] == "2026-04-08"
        assert rows[0]["bureau_name"] == published["network"]["unit"]["name"]

    @pytest.mark.parametrize("path", [PUBLIC, f"{PUBLIC}.csv"])
    async def test_etag_and_304(self, public, published, path):
        params = {"plan_id": published["plan"].id}
        first = await public.get(path, params=params)
        tag = first.headers["etag"]
        again = await public.get(path, params=params, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == tag
        assert (
            await public.get(path, params=params, headers={"If-None-Match": f'W/{tag}, "x"'})
        ).status_code == 304
        stale = await public.get(path, params=params, headers={"If-None-Match": '"0000"'})
        assert stale.status_code == 200 and stale.content == first.content

    async def test_a_new_result_changes_the_etag(self, registry, public, published, token_for):
        network = published["network"]
        # A plan of the city bureau: the unit's own lists stay as the fixture made them.
        plan = await drawn_plan(registry, network["city"])
        subject = (await chain_of(registry, network["unit"]))["enterprise"]
        officers = [network["officers"]["county"], network["officers"]["city"]]
        task = await drawn_task(registry, plan, subject, officers)
        before = await public.get(PUBLIC, params={"plan_id": plan.id})
        assert before.json()["items"] == []
        response = await registry.post(
            f"{TASKS}/{task.id}/result",
            json={"inspected_on": "2026-04-01", "findings": "现场检查未见异常", "result": "compliant"},
            headers={**auth(token_for(network["city"], roles=("supervision",))), "If-Match": '"1"'},
        )
        assert response.status_code == 201, response.text
        after = await public.get(
            PUBLIC, params={"plan_id": plan.id}, headers={"If-None-Match": before.headers["etag"]}
        )
        assert after.status_code == 200 and [i["task_id"] for i in after.json()["items"]] == [task.id]

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"year": "1999"}, "query.year"),
            ({"year": "x"}, "query.year"),
            ({"plan_id": "0"}, "query.plan_id"),
            ({"bureau_id": str(2**53)}, "query.bureau_id"),
            ({"limit": "501"}, "query.limit"),
            ({"cursor": "!!"}, "query.cursor"),
        ],
    )
    async def test_bad_query(self, public, params, loc):
        problem = assert_problem(await public.get(PUBLIC, params=params), 422, "/problems/validation-error")
        assert problem["errors"][0]["loc"] == loc

    async def test_a_token_is_not_needed_and_not_looked_at(self, public, published):
        response = await public.get(
            PUBLIC, params={"plan_id": published["plan"].id}, headers={"Authorization": "Bearer not.a.token"}
        )
        assert response.status_code == 200, response.text


class TestRateLimit:
    async def test_refused_past_the_limit_with_retry_after(self, published):
        settings = public_settings(public_rate_limit=3, public_rate_window_seconds=3600)
        async for client in _app_client(create_app(settings), "http://public"):
            params = {"plan_id": published["plan"].id}
            for path in (PUBLIC, f"{PUBLIC}.csv", PUBLIC):
                assert (await client.get(path, params=params)).status_code == 200
            refused = await client.get(PUBLIC, params=params)
            assert_problem(refused, 429, "/problems/too-many-requests")
            assert 1 <= int(refused.headers["retry-after"]) <= 3600
            assert_problem(await client.get(f"{PUBLIC}.csv"), 429, "/problems/too-many-requests")

    async def test_counted_per_client_address(self, published):
        from httpx import ASGITransport, AsyncClient

        settings = public_settings(public_rate_limit=1, public_rate_window_seconds=3600)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            for address in ("192.0.2.1", "192.0.2.2"):
                transport = ASGITransport(app=app, client=(address, 4000))
                async with AsyncClient(transport=transport, base_url="http://public") as client:
                    assert (await client.get(PUBLIC)).status_code == 200
                    assert_problem(await client.get(PUBLIC), 429, "/problems/too-many-requests")

    async def test_served_unlimited_when_redis_is_down(self, published, caplog):
        settings = public_settings(public_rate_limit=1, redis_url="redis://127.0.0.1:1/0")
        logger = logging.getLogger("platform.ratelimit")
        async for client in _app_client(create_app(settings), "http://public"):
            # The app's lifespan set logging up anew: listen on the limiter's own logger.
            logger.addHandler(caplog.handler)
            try:
                for _ in range(3):
                    assert (
                        await client.get(PUBLIC, params={"plan_id": published["plan"].id})
                    ).status_code == 200
            finally:
                logger.removeHandler(caplog.handler)
        warnings = [r for r in caplog.records if r.name == "platform.ratelimit"]
        assert len(warnings) == 3 and all(r.levelno == logging.WARNING for r in warnings)
        assert all("rate limiting skipped" in r.getMessage() for r in warnings)

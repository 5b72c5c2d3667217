"""Idempotency-Key on POST: a retried write is carried out once, its answer replayed; a reused
key is refused; concurrent duplicates do not write twice; big bodies stream through."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select

from services.common.app import create_service_app
from services.common.auth import PrincipalKind
from services.common.db import utcnow
from services.common.deps import AuditDep, PrincipalDep, SessionDep
from services.common.idempotency import KEYS, MAX_STORED_BODY_BYTES
from services.common.jobs import purge_idempotency_keys
from services.common.problems import Conflict, ServiceUnavailable
from services.registry.app import AUDIT
from services.registry.config import RegistrySettings
from services.registry.models import AuditEntry
from tests.common.test_problems import assert_problem
from tests.conftest import auth, unique

PREFIX = "/api/v1/idem"
THINGS = f"{PREFIX}/things"


class Probe:
    """What the test routes did: handler runs per name, and gates a test opens."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}


def probe_router(probe: Probe) -> APIRouter:
    router = APIRouter(prefix=PREFIX)

    @router.post("/things", status_code=201)
    async def create_thing(
        payload: dict, session: SessionDep, audit: AuditDep, principal: PrincipalDep, response: Response
    ) -> dict:
        name = payload["name"]
        probe.runs[name] += 1
        if name in probe.gates:
            probe.entered[name].set()
            await probe.gates[name].wait()
        await audit.record(session, principal, "thing.created", "thing", name, payload)
        await session.commit()
        response.headers["Location"] = f"{THINGS}/{name}"
        response.headers["ETag"] = '"1"'
        response.headers["X-Not-Kept"] = "1"
        return {"name": name, "run": probe.runs[name]}

    @router.post("/flaky/{name}", status_code=201)
    async def flaky(name: str, _: PrincipalDep, failure: str = "unavailable") -> dict:
        probe.runs[name] += 1
        if probe.runs[name] == 1:
            if failure == "unavailable":
                raise ServiceUnavailable("Not yet.")
            raise RuntimeError("a bug")
        return {"run": probe.runs[name]}

    @router.post("/early/{name}")
    async def early(name: str, _: PrincipalDep) -> dict:
        probe.runs[name] += 1
        raise Conflict("Refused before the body was read.", slug="refused-early")

    @router.post("/secret/{name}", status_code=201)
    async def secret(name: str, _: PrincipalDep, response: Response) -> dict:
        probe.runs[name] += 1
        response.headers["Cache-Control"] = "no-store"
        response.headers["Location"] = f"{PREFIX}/secret/{name}"
        return {"client_secret": uuid.uuid4().hex}

    @router.post("/large/{name}")
    async def large(name: str, _: PrincipalDep) -> Response:
        probe.runs[name] += 1
        return Response(b"x" * (MAX_STORED_BODY_BYTES + 1), media_type="application/octet-stream")

    @router.post("/upload/{name}")
    async def upload(name: str, request: Request, _: PrincipalDep) -> dict:
        probe.runs[name] += 1
        digest, size = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        return {"bytes": size, "sha256": digest.hexdigest()}

    return router


@pytest.fixture(scope="module")
async def service() -> AsyncIterator[tuple[httpx.AsyncClient, Probe]]:
    probe = Probe()
    app = create_service_app(
        name="idem",
        title="t",
        description="t",
        settings=RegistrySettings(),
        routers=[probe_router(probe)],
        audit=AUDIT,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://idem") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client, probe


@pytest.fixture
def principal(token_for) -> dict[str, str]:
    """Headers of one principal, with a fresh token per request but one account."""
    return auth(token_for(account_id=str(uuid.uuid4()), roles=("system",), kind=PrincipalKind.SYSTEM))


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def things_written(client, name: str) -> int:
    async with client.app.state.sessionmaker() as session:
        query = (
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.c.entity == "thing", AuditEntry.c.entity_id == name)
        )
        return (await session.exec(query)).scalar_one()


async def key_rows(client, key: str) -> list:
    async with client.app.state.sessionmaker() as session:
        return list((await session.exec(select(KEYS).where(KEYS.c.key == key))).all())


class TestReplay:
    async def test_a_repeat_gets_the_first_answer_and_writes_nothing(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        first = await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        again = await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() == {"name": name, "run": 1}
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        for header in ("location", "etag", "content-type"):
            assert again.headers[header] == first.headers[header]
        assert "x-not-kept" not in again.headers
        assert probe.runs[name] == 1 and await things_written(client, name) == 1

    async def test_without_a_key_every_post_runs(self, service, principal):
        client, probe = service
        name = unique("thing-")
        for _ in range(2):
            assert (await client.post(THINGS, json={"name": name}, headers=principal)).status_code == 201
        assert probe.runs[name] == 2 and await things_written(client, name) == 2

    async def test_an_answer_given_before_the_body_was_read_is_replayed(self, service, principal):
        client, probe = service
        name, key = unique("early-"), str(uuid.uuid4())
        url = f"{PREFIX}/early/{name}"
        first = await client.post(url, content=b"payload", headers=keyed(principal, key))
        again = await client.post(url, content=b"payload", headers=keyed(principal, key))
        other = await client.post(url, content=b"another payload", headers=keyed(principal, key))
        assert_problem(first, 409, "/problems/refused-early")
        assert again.status_code == 409 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["type"] == "/problems/refused-early"
        assert_problem(other, 422, "/problems/idempotency-key-reused")
        assert probe.runs[name] == 1

    async def test_an_answer_marked_no_store_is_not_kept(self, service, principal):
        client, probe = service
        name, key = unique("secret-"), str(uuid.uuid4())
        url = f"{PREFIX}/secret/{name}"
        first = await client.post(url, headers=keyed(principal, key))
        again = await client.post(url, headers=keyed(principal, key))
        assert first.status_code == 201 and "client_secret" in first.json()
        problem = assert_problem(again, 409, "/problems/idempotency-key-not-replayable")
        assert problem["original_status"] == 201 and problem["location"] == url
        assert probe.runs[name] == 1
        (row,) = await key_rows(client, key)
        assert row.status == 201 and row.response_body is None

    async def test_an_answer_too_large_to_keep_streams_and_is_not_replayed(self, service, principal):
        client, probe = service
        name, key = unique("large-"), str(uuid.uuid4())
        url = f"{PREFIX}/large/{name}"
        first = await client.post(url, headers=keyed(principal, key))
        again = await client.post(url, headers=keyed(principal, key))
        assert first.status_code == 200 and len(first.content) == MAX_STORED_BODY_BYTES + 1
        assert_problem(again, 409, "/problems/idempotency-key-not-replayable")
        assert probe.runs[name] == 1


class TestReuse:
    async def test_the_same_key_with_another_body_is_refused_and_writes_nothing(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        response = await client.post(
            THINGS, json={"name": name, "colour": "red"}, headers=keyed(principal, key)
        )
        assert_problem(response, 422, "/problems/idempotency-key-reused")
        assert probe.runs[name] == 1 and await things_written(client, name) == 1

    async def test_the_same_key_on_another_path_is_refused(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        response = await client.post(f"{PREFIX}/early/{name}", headers=keyed(principal, key))
        problem = assert_problem(response, 422, "/problems/idempotency-key-reused")
        assert THINGS in problem["detail"]
        assert probe.runs[name] == 1

    async def test_keys_are_per_principal(self, service, token_for):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        for _ in range(2):
            headers = keyed(auth(token_for(account_id=str(uuid.uuid4()))), key)
            response = await client.post(THINGS, json={"name": name}, headers=headers)
            assert response.status_code == 201 and "idempotent-replayed" not in response.headers
        assert probe.runs[name] == 2 and await things_written(client, name) == 2


class TestConcurrency:
    async def test_a_duplicate_while_the_first_runs_is_409_then_replayed(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        probe.gates[name], probe.entered[name] = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(client.post(THINGS, json={"name": name}, headers=keyed(principal, key)))
        await asyncio.wait_for(probe.entered[name].wait(), 10)
        duplicate = await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        probe.gates[name].set()
        original = await first
        later = await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        problem = assert_problem(duplicate, 409, "/problems/idempotency-key-in-progress")
        assert duplicate.headers["retry-after"] == "1" and problem["detail"]
        assert original.status_code == 201 and "idempotent-replayed" not in original.headers
        assert later.status_code == 201 and later.headers["idempotent-replayed"] == "true"
        assert probe.runs[name] == 1 and await things_written(client, name) == 1

    async def test_simultaneous_duplicates_write_once(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        responses = await asyncio.gather(
            *(client.post(THINGS, json={"name": name}, headers=keyed(principal, key)) for _ in range(6))
        )
        carried_out = [
            r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers
        ]
        others = [r for r in responses if r not in carried_out]
        assert len(carried_out) == 1
        for response in others:
            if response.status_code == 409:
                assert response.json()["type"] == "/problems/idempotency-key-in-progress"
            else:
                assert response.status_code == 201 and response.headers["idempotent-replayed"] == "true"
        assert probe.runs[name] == 1 and await things_written(client, name) == 1

    async def test_a_key_left_in_progress_by_a_crash_is_never_run_again(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        me = (await client.get("/api/v1/idem/me", headers=principal)).json()["account_id"]
        async with client.app.state.sessionmaker() as session:
            await session.exec(
                KEYS.insert().values(principal=me, key=key, method="POST", path=THINGS, created_at=utcnow())
            )
            await session.commit()
        response = await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        assert_problem(response, 409, "/problems/idempotency-key-in-progress")
        assert probe.runs[name] == 0 and await things_written(client, name) == 0


class TestFailures:
    @pytest.mark.parametrize(("failure", "status"), [("unavailable", 503), ("bug", 500)])
    async def test_a_failed_attempt_is_not_kept_so_a_retry_runs(self, service, principal, failure, status):
        client, _ = service
        name, key = unique("flaky-"), str(uuid.uuid4())
        url = f"{PREFIX}/flaky/{name}?failure={failure}"
        first = await client.post(url, headers=keyed(principal, key))
        assert first.status_code == status
        assert await key_rows(client, key) == []
        retry = await client.post(url, headers=keyed(principal, key))
        assert retry.status_code == 201 and retry.json() == {"run": 2}
        assert "idempotent-replayed" not in retry.headers
        (row,) = await key_rows(client, key)
        assert row.status == 201 and row.completed_at is not None

    async def test_without_a_valid_token_the_route_answers_401_and_nothing_is_kept(self, service):
        client, _ = service
        name, key = unique("thing-"), str(uuid.uuid4())
        response = await client.post(
            THINGS, json={"name": name}, headers={"Idempotency-Key": key, "Authorization": "Bearer nope"}
        )
        assert_problem(response, 401, "/problems/unauthorized")
        assert await key_rows(client, key) == []

    @pytest.mark.parametrize(
        "key",
        [b"", b"x" * 256, b"caf\xc3\xa9", b"tab\there", b" leading", b"trailing "],
        ids=["empty", "too-long", "not-ascii", "control", "leading-space", "trailing-space"],
    )
    async def test_a_malformed_key_is_refused(self, service, principal, key):
        client, probe = service
        name = unique("thing-")
        response = await client.post(
            THINGS, json={"name": name}, headers={**principal, "Idempotency-Key": key}
        )
        assert_problem(response, 400, "/problems/idempotency-key-invalid")
        assert probe.runs[name] == 0

    async def test_two_keys_are_refused(self, service, principal):
        client, probe = service
        name = unique("thing-")
        headers = [*principal.items(), ("Idempotency-Key", "one"), ("Idempotency-Key", "two")]
        response = await client.post(THINGS, json={"name": name}, headers=headers)
        assert_problem(response, 400, "/problems/idempotency-key-invalid")
        assert probe.runs[name] == 0

    async def test_the_longest_key_with_inner_spaces_is_accepted(self, service, principal):
        client, _ = service
        key = "a" + " " * 253 + "z"
        response = await client.post(THINGS, json={"name": unique("t-")}, headers=keyed(principal, key))
        assert response.status_code == 201


class TestExpiry:
    async def test_an_expired_key_runs_again(self, service, principal):
        client, probe = service
        name, key = unique("thing-"), str(uuid.uuid4())
        await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        async with client.app.state.sessionmaker() as session:
            await session.exec(
                KEYS.update().where(KEYS.c.key == key).values(created_at=utcnow() - timedelta(days=2))
            )
            await session.commit()
        again = await client.post(THINGS, json={"name": name}, headers=keyed(principal, key))
        assert again.status_code == 201 and "idempotent-replayed" not in again.headers
        assert probe.runs[name] == 2 and await things_written(client, name) == 2
        (row,) = await key_rows(client, key)
        assert utcnow() - row.created_at < timedelta(minutes=1)

    async def test_the_purge_job_deletes_only_expired_keys(self, service):
        client, _ = service
        owner = f"purge-{uuid.uuid4()}"
        now = utcnow()
        rows = [
            {"principal": owner, "key": key, "method": "POST", "path": "/x", "created_at": now - age}
            for key, age in (("old", timedelta(hours=25)), ("new", timedelta(hours=23)))
        ]
        maker = client.app.state.sessionmaker
        async with maker() as session:
            await session.exec(KEYS.insert().values(rows))
            await session.commit()
        outcome = await purge_idempotency_keys({"sessionmaker": maker, "settings": RegistrySettings()})
        async with maker() as session:
            left = (await session.exec(select(KEYS.c.key).where(KEYS.c.principal == owner))).scalars().all()
        assert outcome["purged"] >= 1 and left == ["new"]


class TestStreaming:
    SIZE = 50_000_000
    CHUNK = b"y" * 65536

    async def body(self, tail: bytes = b"") -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.SIZE:
            part = self.CHUNK[: self.SIZE - sent]
            sent += len(part)
            yield part
        if tail:
            yield tail

    async def test_a_large_upload_streams_through_and_is_replayed_without_being_held(
        self, service, principal
    ):
        client, probe = service
        name, key = unique("upload-"), str(uuid.uuid4())
        url = f"{PREFIX}/upload/{name}"
        expected = hashlib.sha256()
        async for part in self.body():
            expected.update(part)
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            first = await client.post(url, content=self.body(), headers=keyed(principal, key))
            again = await client.post(url, content=self.body(), headers=keyed(principal, key))
            other = await client.post(url, content=self.body(b"!"), headers=keyed(principal, key))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert first.status_code == 200
        assert first.json() == {"bytes": self.SIZE, "sha256": expected.hexdigest()}
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert_problem(other, 422, "/problems/idempotency-key-reused")
        assert probe.runs[name] == 1
        # Three 50 MB bodies went through; what was held at once stayed a few chunks.
        assert peak < 8_000_000, peak


class TestDocumentation:
    def test_every_post_documents_the_key(self, service):
        client, _ = service
        doc = client.app.openapi()
        posts = [item["post"] for item in doc["paths"].values() if "post" in item]
        assert posts
        for operation in posts:
            (parameter,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
            assert parameter["in"] == "header" and parameter["required"] is False
            assert parameter["schema"]["maxLength"] == 255
            assert {"400", "409", "422"} <= set(operation["responses"])

    def test_the_token_endpoint_does_not(self):
        from gateway.app import build_api
        from gateway.config import GatewaySettings

        doc = build_api(GatewaySettings()).openapi()
        token = doc["paths"]["/api/v1/auth/token"]["post"]
        assert all(p["name"] != "Idempotency-Key" for p in token.get("parameters", []))
        assert "x-no-idempotency-key" not in token
        accounts = doc["paths"]["/api/v1/auth/accounts/systems"]["post"]
        assert any(p["name"] == "Idempotency-Key" for p in accounts["parameters"])


class TestGateway:
    async def test_the_gateways_own_writes_take_a_key(self, gateway, token_for):
        headers = keyed(auth(token_for(roles=("service",), kind=PrincipalKind.SERVICE)), str(uuid.uuid4()))
        notice = {"officer_id": 987654321}  # no such officer's login: nothing to change
        first = await gateway.post("/api/v1/auth/officer-changes", json=notice, headers=headers)
        again = await gateway.post("/api/v1/auth/officer-changes", json=notice, headers=headers)
        assert first.status_code == again.status_code == 204
        assert again.headers["idempotent-replayed"] == "true"

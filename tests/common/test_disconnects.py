"""A client that hangs up mid-request is recorded as 499 (client closed request),
at INFO in the access log, never as a 500 with an error logged."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from prometheus_client import REGISTRY

from gateway.app import create_app as create_gateway
from gateway.config import GatewaySettings
from services.common.asgi import RequestContextMiddleware
from services.common.problems import install_problem_handlers
from tests.servers import echo_server, serve

PREFIX = f"/api/v1/dc{uuid.uuid4().hex[:6]}"  # this module's own metric labels


def requests_counted(method: str, route: str, status: int) -> float:
    labels = {"method": method, "route": route, "status": str(status)}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


def probe_app() -> FastAPI:
    """The skeleton every app shares (problem handlers, request-context layer) with routes
    that read bodies and stream answers."""
    router = APIRouter(prefix=PREFIX)

    @router.post("/raw")
    async def raw(request: Request) -> dict:
        return {"received": len(await request.body())}

    @router.post("/parsed")
    async def parsed(payload: dict) -> dict:
        return {"keys": len(payload)}

    @router.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():
            for _ in range(3):
                yield b"x" * 100

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    api = FastAPI()
    install_problem_handlers(api)
    api.include_router(router)
    api.add_middleware(RequestContextMiddleware, max_body_bytes=1_000_000)
    return api


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]], spec: str = "2.3") -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("10.9.8.7", 50000),
        "server": ("test", 80),
    }


async def send_cut_body(app, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> list[dict]:
    """Declares 1000 bytes, sends 10, then the client is gone (as a server reports it)."""
    messages = [{"type": "http.request", "body": b"0123456789", "more_body": True}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = [(b"content-length", b"1000"), *headers]
    await app(http_scope(method, path, headers), receive, send)
    return sent


def assert_recorded_as_hang_up(
    caplog, method: str, route: str, before: dict[int, float], path: str | None = None
) -> None:
    assert requests_counted(method, route, 499) == before[499] + 1
    assert requests_counted(method, route, 500) == before[500]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    access = [r for r in caplog.records if r.name == "platform.access" and r.path == (path or route)]
    assert [(r.levelno, r.status) for r in access] == [(logging.INFO, 499)]


def counts(method: str, route: str) -> dict[int, float]:
    return {status: requests_counted(method, route, status) for status in (499, 500)}


@pytest.fixture
def access_logged(caplog):
    caplog.set_level(logging.INFO, logger="platform.access")
    return caplog


class TestServiceApp:
    @pytest.mark.parametrize("route", ["raw", "parsed"])
    async def test_body_cut_off_is_499(self, access_logged, route):
        path = f"{PREFIX}/{route}"
        before = counts("POST", path)
        await send_cut_body(probe_app(), "POST", path, [(b"content-type", b"application/json")])
        assert_recorded_as_hang_up(access_logged, "POST", path, before)

    async def test_send_to_a_closed_connection_is_499(self, access_logged):
        """A server of ASGI spec 2.4 raises OSError on send once the client is gone."""
        path = f"{PREFIX}/stream"
        before = counts("GET", path)
        sent: list[dict] = []

        async def receive() -> dict:
            await asyncio.sleep(3600)  # the client says nothing; its socket just closes
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body" and sent:
                raise OSError("connection reset by peer")
            sent.append(message)

        await probe_app()(http_scope("GET", path, [], spec="2.4"), receive, send)
        assert sent[0]["status"] == 200  # the answer had started when the client went away
        assert_recorded_as_hang_up(access_logged, "GET", path, before)

    async def test_a_complete_request_keeps_its_status(self, access_logged):
        path = f"{PREFIX}/raw"
        ok_before = requests_counted("POST", path, 200)
        before = counts("POST", path)
        messages = [{"type": "http.request", "body": b"0123456789", "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await probe_app()(http_scope("POST", path, [(b"content-length", b"10")]), receive, send)
        assert sent[0]["status"] == 200
        assert requests_counted("POST", path, 200) == ok_before + 1
        assert counts("POST", path) == before


class TestRealServer:
    async def test_socket_closed_mid_body_is_499(self, access_logged):
        path = f"{PREFIX}/raw"
        before = counts("POST", path)
        async with serve(probe_app()) as url:
            _reader, writer = await asyncio.open_connection("127.0.0.1", urlsplit(url).port)
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n".encode() + b"0123456789"
            )
            await writer.drain()
            await asyncio.sleep(0.1)  # the app is waiting for the rest of the body
            writer.close()
            await writer.wait_closed()
            for _ in range(200):
                if requests_counted("POST", path, 499) > before[499]:
                    break
                await asyncio.sleep(0.025)
        assert_recorded_as_hang_up(access_logged, "POST", path, before)


@pytest.fixture(scope="module")
async def gateway_app() -> AsyncIterator:
    async with echo_server() as echo:
        app = create_gateway(GatewaySettings(registry_url=echo))
        async with app.api.router.lifespan_context(app.api):
            yield app


class TestGateway:
    async def test_token_request_cut_off_is_499(self, gateway_app, access_logged):
        path = "/api/v1/auth/token"
        before = counts("POST", path)
        await send_cut_body(
            gateway_app, "POST", path, [(b"content-type", b"application/x-www-form-urlencoded")]
        )
        assert_recorded_as_hang_up(access_logged, "POST", path, before)

    async def test_forwarded_request_cut_off_is_499(self, gateway_app, access_logged, token_for):
        path = "/api/v1/registry/bulk"
        before = counts("POST", "proxy:registry")
        sent = await send_cut_body(
            gateway_app, "POST", path, [(b"authorization", f"Bearer {token_for()}".encode())]
        )
        assert sent == []  # nobody is waiting for an answer
        assert_recorded_as_hang_up(access_logged, "POST", "proxy:registry", before, path)

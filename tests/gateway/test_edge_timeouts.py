"""Slow and oversized requests cut off at the edge, on a real socket: a gateway served by
uvicorn with the edge protocol (as ``services.common.serve`` runs it), clients that trickle
bytes, and heads too large. Timeouts are small here; the defaults are in gateway/config.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import uvicorn

from gateway.app import create_app
from gateway.config import GatewaySettings
from gateway.edge import edge_protocol
from services.common.auth import Role
from tests.servers import echo_server
from tools.platform import Platform, free_port

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 0.5
TRICKLE = 0.3  # seconds between bytes: "one byte every few seconds", faster
ECHO = "/api/v1/registry/echo"
TOKEN = "/api/v1/auth/token"


@contextlib.asynccontextmanager
async def served(settings: GatewaySettings) -> AsyncIterator[int]:
    """The gateway app on a real socket with the protocol and keep-alive ``serve`` gives it."""
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=edge_protocol(settings),
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def gateway_port() -> AsyncIterator[int]:
    async with echo_server() as echo:
        settings = GatewaySettings(
            registry_url=echo,
            header_timeout_seconds=HEADER_TIMEOUT,
            body_timeout_seconds=BODY_TIMEOUT,
            body_min_rate_bytes=10,  # a second more per 10 bytes received
            keep_alive_timeout_seconds=KEEP_ALIVE,
            max_url_bytes=2048,
            max_header_bytes=4096,
        )
        async with served(settings) as port:
            yield port


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._head: asyncio.Task | None = None

    def head(self) -> asyncio.Task:
        """The next answer's head, read as soon as it comes."""
        if self._head is None:
            self._head = asyncio.ensure_future(self.reader.readuntil(b"\r\n\r\n"))
        return self._head

    def close(self) -> None:
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.cancel()
        elif head is not None and not head.cancelled():
            head.exception()  # retrieved: a connection closed before an answer is no error here
        self.writer.close()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def trickle(self, data: bytes, every: float = TRICKLE) -> bool:
        """Send ``data`` a byte at a time; False once the server has answered or closed."""
        head = self.head()
        for byte in data:
            if head.done() or self.writer.is_closing():
                return False
            try:
                await self.send(bytes([byte]))
            except ConnectionError:
                return False
            await asyncio.sleep(every)
        return True

    async def answer(self, timeout: float = 10.0) -> tuple[int, dict, dict | None]:
        """Status, headers and problem body of one answer."""
        head = await asyncio.wait_for(self.head(), timeout)
        self._head = None
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await asyncio.wait_for(self._body(headers), timeout)
        problem = json.loads(body) if headers.get("content-type") == "application/problem+json" else None
        return int(lines[0].split(" ")[1]), headers, problem

    async def _body(self, headers: dict) -> bytes:
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        chunks = []  # chunked
        while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)
        await self.reader.readexactly(2)
        return b"".join(chunks)

    async def closed(self, timeout: float = 10.0) -> bool:
        """Whether the server closes the connection within ``timeout``."""
        try:
            return await asyncio.wait_for(self.reader.read(1), timeout) == b""
        except TimeoutError:
            return False
        except ConnectionError:
            return True


@pytest.fixture
async def connect(gateway_port) -> AsyncIterator:
    opened: list[Connection] = []

    async def make() -> Connection:
        opened.append(Connection(*await asyncio.open_connection("127.0.0.1", gateway_port)))
        return opened[-1]

    yield make
    for connection in opened:
        connection.close()


def bearer(token_for) -> bytes:
    return f"Authorization: Bearer {token_for(roles=(Role.ENFORCEMENT,))}\r\n".encode()


class TestSlowHeaders:
    async def test_headers_trickled_are_answered_408_and_cut(self, connect):
        connection = await connect()
        started = time.monotonic()
        sent_all = await connection.trickle(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: " + b"a" * 60)
        assert not sent_all
        status, headers, problem = await connection.answer()
        assert (status, problem["type"]) == (408, "/problems/request-timeout")
        assert headers["connection"] == "close" and await connection.closed()
        assert time.monotonic() - started < 10 * HEADER_TIMEOUT

    async def test_the_timeout_runs_from_the_first_byte_not_the_last(self, connect):
        """Each byte arriving in time does not extend the head's time."""
        connection = await connect()
        await connection.send(b"GET /healthz HTTP/1.1\r\n")
        await asyncio.sleep(HEADER_TIMEOUT / 2)
        assert not await connection.trickle(b"Host: gateway\r\n" * 10, every=HEADER_TIMEOUT / 4)
        status, _, problem = await connection.answer()
        assert (status, problem["type"]) == (408, "/problems/request-timeout")

    async def test_a_connection_that_sends_nothing_is_closed(self, connect):
        connection = await connect()
        assert await connection.closed(timeout=10 * HEADER_TIMEOUT)

    async def test_an_idle_keep_alive_connection_is_closed(self, connect):
        connection = await connect()
        await connection.send(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        status, headers, _ = await connection.answer()
        assert status == 200 and "connection" not in headers
        assert not await connection.closed(timeout=KEEP_ALIVE / 4)  # kept alive past the answer …
        assert await connection.closed()  # … then closed, idle

    async def test_a_second_request_on_a_connection_has_its_own_timeout(self, connect):
        connection = await connect()
        await connection.send(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert (await connection.answer())[0] == 200
        assert not await connection.trickle(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n" * 3)
        status, _, problem = await connection.answer()
        assert (status, problem["type"]) == (408, "/problems/request-timeout")
        assert await connection.closed()


class TestSlowBodies:
    async def test_a_proxied_body_trickled_is_answered_408(self, connect, token_for):
        connection = await connect()
        body = b'{"a": "' + b"x" * 200 + b'"}'
        head = b"POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n" % ECHO.encode()
        await connection.send(head + bearer(token_for) + b"Content-Length: %d\r\n\r\n" % len(body))
        # One byte every 0.3 s earns 0.03 s of extra time each: the body's time runs out.
        assert not await connection.trickle(body)
        status, headers, problem = await connection.answer()
        assert (status, problem["type"]) == (408, "/problems/request-timeout")
        assert headers["connection"] == "close" and await connection.closed()
        assert problem["request_id"] == headers["x-request-id"]

    async def test_a_body_to_the_gateways_own_api_trickled_is_answered_408(self, connect):
        connection = await connect()
        body = b"grant_type=client_credentials&client_id=nobody&client_secret=" + b"s" * 100
        head = b"POST %s HTTP/1.1\r\nHost: gateway\r\n" % TOKEN.encode()
        head += b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body)
        await connection.send(head)
        assert not await connection.trickle(body)
        status, headers, problem = await connection.answer()
        assert (status, problem["type"]) == (408, "/problems/request-timeout")
        assert headers["connection"] == "close" and await connection.closed()

    async def test_a_body_arriving_slowly_but_steadily_passes(self, connect, token_for):
        """Every 10 bytes earn a second: 10 bytes each half second keep well within that,
        though the whole body takes twice the body timeout."""
        connection = await connect()
        body = json.dumps({"n": "y" * 40}).encode()
        head = b"POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n" % ECHO.encode()
        await connection.send(head + bearer(token_for) + b"Content-Length: %d\r\n\r\n" % len(body))
        for start in range(0, len(body), 10):
            await asyncio.sleep(BODY_TIMEOUT / 2)
            await connection.send(body[start : start + 10])
        status, headers, _ = await connection.answer()
        assert status == 201, "the echo upstream read it all"
        assert "connection" not in headers and headers["ratelimit-limit"]

    async def test_waiting_on_the_upstream_is_not_the_clients_delay(self, connect, token_for):
        """A body sent at once, on a connection then kept open, is not timed out while idle."""
        connection = await connect()
        head = b"POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n" % ECHO.encode()
        await connection.send(head + bearer(token_for) + b"Content-Length: 2\r\n\r\n{}")
        assert (await connection.answer())[0] == 201
        await connection.send(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert (await connection.answer())[0] == 200

    async def test_a_body_the_answer_did_not_wait_for_may_not_trickle_on(self, connect):
        """Refused before its body was read (no token), the rest of it drains within the body
        timeout: the connection does not stay open for as long as bytes keep coming."""
        connection = await connect()
        head = b"POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n" % ECHO.encode()
        await connection.send(head + b"Content-Length: 1000\r\n\r\n{")
        status, _, problem = await connection.answer()
        assert (status, problem["type"]) == (401, "/problems/unauthorized")
        assert not await connection.trickle(b"x" * 100)
        assert await connection.closed()


class TestHeadLimits:
    async def test_a_url_too_long_is_refused_414(self, connect):
        connection = await connect()
        await connection.send(b"GET /api/v1/registry/echo?q=" + b"a" * 3000 + b" HTTP/1.1\r\nHost: g\r\n\r\n")
        status, _, problem = await connection.answer()
        assert (status, problem["type"]) == (414, "/problems/uri-too-long")
        assert await connection.closed()

    @pytest.mark.parametrize("trickled", [False, True], ids=["at-once", "in-pieces"])
    async def test_headers_too_large_are_refused_431(self, connect, trickled):
        connection = await connect()
        head = b"GET /healthz HTTP/1.1\r\nHost: g\r\n" + b"X-Pad: %s\r\n" % (b"p" * 100) * 50
        if trickled:  # never complete: counted as it arrives
            for start in range(0, len(head), 1000):
                await connection.send(head[start : start + 1000])
        else:
            await connection.send(head + b"\r\n")
        status, _, problem = await connection.answer()
        assert (status, problem["type"]) == (431, "/problems/request-headers-too-large")
        assert await connection.closed()

    async def test_a_head_within_the_limits_passes(self, connect):
        connection = await connect()
        url = b"/healthz?q=" + b"a" * 1500
        await connection.send(b"GET " + url + b" HTTP/1.1\r\nHost: g\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n")
        assert (await connection.answer())[0] == 200


@pytest.fixture(scope="module")
def gateway_process() -> Iterator[Platform]:
    """The gateway as ``python -m services.common.serve gateway`` runs it, with small timeouts."""
    env = {
        "GATEWAY_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "GATEWAY_KEEP_ALIVE_TIMEOUT_SECONDS": str(KEEP_ALIVE),
        "GATEWAY_REGISTRY_URL": f"http://127.0.0.1:{free_port()}",  # not called here
    }
    running = Platform(env=env, gateway_port=free_port(), service_ports={}, workers=False)
    try:
        running.start_gateway()
        running.wait_ready([running.gateway_url])
        yield running
    finally:
        running.stop()


class TestTheGatewayProcess:
    async def test_serve_runs_the_gateway_with_the_edge_protocol(self, gateway_process):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway_process.gateway_port)
        connection = Connection(reader, writer)
        try:
            assert not await connection.trickle(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n" * 4)
            status, _, problem = await connection.answer()
            assert (status, problem["type"]) == (408, "/problems/request-timeout")
            assert await connection.closed()
        finally:
            connection.close()

    async def test_idle_keep_alive_connections_are_closed(self, gateway_process):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway_process.gateway_port)
        connection = Connection(reader, writer)
        try:
            await connection.send(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            assert (await connection.answer(timeout=10))[0] == 200
            assert await connection.closed()
        finally:
            connection.close()

"""Small real servers tests point the gateway at: an echo upstream and a socket that never answers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator

import httpx
import uvicorn

from tools.platform import free_port

DOWNLOAD_CHUNK = 65536


class RedisServer:
    """A Redis without persistence on a port of its own: a restart forgets every key."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        ping = ["redis-cli", "-p", str(self.port), "ping"]
        while subprocess.run(ping, capture_output=True, check=False).stdout != b"PONG\n":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> None:
        """Stop it: shut down (SIGTERM), or ``kill`` it as a crash would (SIGKILL)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def download_body(size: int) -> bytes:
    """The ``size`` bytes ``/…/download`` streams: a pattern whose period (251) does not
    divide the chunk size, so a chunk dropped, repeated or reordered changes the digest."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


async def echo_app(scope, receive, send):
    """Answers with what it received (its length and sha256 digest); ``/…/download?size=N``
    streams the N bytes of ``download_body`` with their digest in ``x-content-sha256``."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"].endswith("/download"):
        size = int(dict(p.split("=") for p in scope["query_string"].decode().split("&"))["size"])
        body = download_body(size)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"x-upstream", b"echo"),
                    (b"x-content-sha256", hashlib.sha256(body).hexdigest().encode()),
                    (b"connection", b"keep-alive, x-upstream-private"),
                    (b"x-upstream-private", b"1"),
                ],
            }
        )
        for start in range(0, size, DOWNLOAD_CHUNK):
            part = body[start : start + DOWNLOAD_CHUNK]
            await send({"type": "http.response.body", "body": part, "more_body": start + len(part) < size})
        return
    if scope["path"].endswith("/redirect"):
        # A service that answers with its own address, as a framework's slash redirect does.
        own = f"http://{scope['server'][0]}:{scope['server'][1]}"
        target = scope["query_string"].decode().removeprefix("to=") or own + "/api/v1/registry/me"
        await send(
            {"type": "http.response.start", "status": 307, "headers": [(b"location", target.encode())]}
        )
        await send({"type": "http.response.body", "body": b""})
        return
    digest, length = hashlib.sha256(), 0
    while True:
        message = await receive()
        body = message.get("body", b"")
        digest.update(body)
        length += len(body)
        if not message.get("more_body"):
            break
    payload = json.dumps(
        {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "length": length,
            "sha256": digest.hexdigest(),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"set-cookie", b"a=b")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    async with serve(echo_app) as url:
        yield url


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    """``app`` on a real socket in this event loop (its lifespan is the caller's)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and reads, but never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await reader.read(1 << 20)
            await asyncio.sleep(3600)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()


class TcpProxy:
    """A TCP forwarder to ``target`` that a test can stop and start again on the same port:
    the backing service as its clients see it going away (connections cut, then refused)
    and coming back, without touching the service itself."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.upstream_ports: set[int] = set()  # local ports of the connections to the target

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self.upstream_ports.clear()
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        self.upstream_ports.add(up_writer.get_extra_info("sockname")[1])

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


class RoutedTransport(httpx.AsyncBaseTransport):
    """Sends ``/api/v1/<service>/…`` to that service's server, as the gateway would route it
    (the token a service client presents is signed by the test run instead)."""

    def __init__(self, servers: dict[str, str]) -> None:
        self.servers = servers
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        service = request.url.path.removeprefix("/api/v1/").split("/", 1)[0]
        target = httpx.URL(self.servers[service])
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        request.headers["host"] = f"{target.host}:{target.port}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

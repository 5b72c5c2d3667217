"""``Idempotency-Key`` on POST: a write retried with the same key is carried out once.

Provincial systems retry a write whose answer they did not get; with a key, the
retry gets the first answer again instead of writing twice. Per principal and
key, each service keeps in its own database the request (method, path, SHA-256
of the body) and, once it is final, the answer (status, ``Location`` /
``ETag`` / ``Content-Type``, body).

* The key row is inserted first, in its own short transaction, so a concurrent
  duplicate finds it and is answered 409 ``idempotency-key-in-progress`` rather
  than running the handler a second time.
* The same key with the same method, path and body replays the stored answer,
  marked ``Idempotent-Replayed: true``; with anything else it is refused, 422
  ``idempotency-key-reused``.
* Only final answers are kept (below 500, but 429). After a 5xx or an error the
  row is deleted, so a retry runs again. A row left in progress by a crash is
  never run again: 409 until it expires.
* The database away (its outage is what failed the request) cannot take the
  deletion, nor an answer to keep: the process tries again, with backoff, until
  it can (:func:`settle_later`). Retries are answered 409 in progress, then run
  (or get the answer) once the database is back, not 24 hours later.
* Keys expire ``idempotency_key_ttl_seconds`` (24 h by default) after first
  use; an expired key may be used again, and :func:`purge_expired_keys` (an arq
  job) deletes the rows.
* The body is hashed as it streams to the handler, never held: a bulk import of
  millions of rows goes through in constant memory. A retry of a completed one
  is hashed while read and thrown away, without the handler.
* The answer is stored before its last part is sent, so a client that has the
  answer finds the key completed. An answer that is ``Cache-Control: no-store``
  (it carries a secret) or larger than ``MAX_STORED_BODY_BYTES`` is not kept:
  a retry then learns that the request was carried out (409
  ``idempotency-key-not-replayable``, with its status and ``Location``).

The principal is the one of the bearer token (``app.state.authorize``); a
request without a valid token goes through untouched, and its route answers 401.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.db import NAMING_CONVENTION, utcnow
from services.common.problems import (
    BadRequest,
    Conflict,
    PayloadTooLarge,
    ProblemError,
    UnprocessableEntity,
    outage_problem,
)

log = logging.getLogger("platform.idempotency")

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL_SECONDS = 24 * 3600
# Answers above this size (rare for a POST) are not kept; a retry learns they were given.
MAX_STORED_BODY_BYTES = 1024 * 1024
# 1–255 printable ASCII characters; no space at either end (HTTP would strip it).
KEY_PATTERN = r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$"
_KEY = re.compile(KEY_PATTERN.encode())
_KEY_HEADER = IDEMPOTENCY_KEY_HEADER.lower().encode()
_KEPT_HEADERS = (b"location", b"etag", b"content-type")


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_key",
        metadata,
        Column("principal", String(64), primary_key=True),  # the account id of the token
        Column("key", String(255), primary_key=True),
        Column("method", String(16), nullable=False),
        Column("path", Text, nullable=False),  # with the query string, if any
        Column("body_sha256", String(64)),  # null until the body has been read
        Column("status", SmallInteger),  # null while the request is in progress
        Column("response_headers", JSONB(none_as_null=True)),
        Column("response_body", LargeBinary),  # null if the answer was not kept
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("completed_at", DateTime(timezone=True)),
    )


# The middleware's own handle on the table every part's metadata declares alike.
KEYS = idempotency_table(MetaData())


def create_idempotency_keys(op) -> None:
    """Migration step: create the key table (and its index) as the models declare it."""
    idempotency_table(MetaData(naming_convention=NAMING_CONVENTION)).create(op.get_bind())


def drop_idempotency_keys(op) -> None:
    op.drop_table("idempotency_key")


class KeyInvalid(BadRequest):
    slug, title = "idempotency-key-invalid", "The Idempotency-Key header is not valid"


class KeyInProgress(Conflict):
    slug, title = "idempotency-key-in-progress", "A request with this Idempotency-Key is in progress"

    def __init__(self) -> None:
        super().__init__(
            "A request with this key is still being carried out, or was cut short; "
            "retry later for its answer, or use a new key for a new request.",
            headers={"Retry-After": "1"},
        )


class KeyReused(UnprocessableEntity):
    slug, title = "idempotency-key-reused", "The Idempotency-Key was used for another request"


class AnswerNotKept(Conflict):
    slug, title = "idempotency-key-not-replayable", "The request was carried out; its answer was not kept"


# A key row the database could not take (deleted, or completed with its answer) is tried
# again after these waits, then every last one, for at most SETTLE_GIVE_UP_SECONDS.
SETTLE_RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
SETTLE_GIVE_UP_SECONDS = 3600.0
_settling: set[asyncio.Task] = set()  # held, so that they are not collected while they wait


def settle_later(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """Run ``attempt`` again in the background until it works (see the module docstring)."""
    task = asyncio.get_running_loop().create_task(_keep_trying(what, attempt))
    _settling.add(task)
    task.add_done_callback(_settling.discard)


async def _keep_trying(what: str, attempt: Callable[[], Awaitable[None]]) -> None:
    started = time.monotonic()
    for tries in itertools.count(1):
        await asyncio.sleep(SETTLE_RETRY_SECONDS[min(tries, len(SETTLE_RETRY_SECONDS)) - 1])
        try:
            await attempt()
        except Exception as exc:
            if time.monotonic() - started > SETTLE_GIVE_UP_SECONDS:
                log.error(f"idempotency key {what}: given up", extra={"error": type(exc).__name__})
                return
            continue
        log.warning(f"idempotency key {what} once the database was back", extra={"tries": tries})
        return


def _expired_before(ttl_seconds: int):
    return utcnow() - timedelta(seconds=ttl_seconds)


async def purge_expired_keys(session: AsyncSession, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> int:
    """Delete the keys older than ``ttl_seconds``; the number deleted. The caller commits."""
    result = await session.exec(delete(KEYS).where(KEYS.c.created_at < _expired_before(ttl_seconds)))
    return result.rowcount  # type: ignore[attr-defined]


class _Store:
    """The key rows, each statement in its own short transaction."""

    def __init__(self, engine: AsyncEngine, principal: str, key: str) -> None:
        self.engine = engine
        self.where = (KEYS.c.principal == principal) & (KEYS.c.key == key)
        self.principal = principal
        self.key = key
        self.claimed_at = None  # when this request took the key: its row, and no later one

    async def claim(self, method: str, path: str, ttl_seconds: int) -> Any:
        """None if this request now holds the key (new, or expired and taken over);
        otherwise the row that holds it."""
        now = utcnow()
        fresh = {
            "method": method,
            "path": path,
            "body_sha256": None,
            "status": None,
            "response_headers": None,
            "response_body": None,
            "created_at": now,
            "completed_at": None,
        }
        statement = (
            insert(KEYS)
            .values(principal=self.principal, key=self.key, **fresh)
            .on_conflict_do_update(
                index_elements=[KEYS.c.principal, KEYS.c.key],
                set_=fresh,
                where=KEYS.c.created_at < _expired_before(ttl_seconds),
            )
            .returning(KEYS.c.key)
        )
        async with self.engine.begin() as conn:
            if (await conn.execute(statement)).first() is not None:
                self.claimed_at = now
                return None
            return (await conn.execute(select(KEYS).where(self.where))).first()

    async def complete(self, digest: str, status: int, headers: list[list[str]], body: bytes | None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                KEYS.update()
                .where(self.where, KEYS.c.created_at == self.claimed_at)
                .values(
                    body_sha256=digest,
                    status=status,
                    response_headers=headers,
                    response_body=body,
                    completed_at=utcnow(),
                )
            )

    async def release(self) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(KEYS).where(self.where, KEYS.c.created_at == self.claimed_at))


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key == name]


def _final(status: int) -> bool:
    """An answer a retry should get again (a 5xx or a 429 is worth retrying instead)."""
    return status < 500 and status != 429


async def _drain(receive: Receive, digest: Any) -> bool:
    """Read the rest of the body into ``digest``; False if the client went away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        digest.update(message.get("body", b""))
        if not message.get("more_body", False):
            return True


class IdempotencyMiddleware:
    """Pure ASGI, inside the request-context layer; see the module docstring."""

    def __init__(self, app: ASGIApp, *, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self.app = app
        self.ttl_seconds = ttl_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        keys = _header(scope, _KEY_HEADER)
        if not keys:
            await self.app(scope, receive, send)
            return
        if len(keys) > 1 or not _KEY.match(keys[0]):
            detail = "Send one Idempotency-Key of 1 to 255 printable ASCII characters (a UUID, say)."
            await KeyInvalid(detail).to_response()(scope, receive, send)
            return
        state = scope["app"].state
        authorization = _header(scope, b"authorization")
        try:
            principal = state.authorize(authorization[0].decode("latin-1") if authorization else None)
        except ProblemError:
            await self.app(scope, receive, send)  # no valid token: the route answers 401
            return
        engine = getattr(state, "idempotency_engine", None) or state.engine
        store = _Store(engine, principal.account_id, keys[0].decode("ascii"))
        query = scope.get("query_string", b"")
        path = scope["path"] + (f"?{query.decode('latin-1')}" if query else "")
        try:
            held = await store.claim(scope["method"], path, self.ttl_seconds)
        except Exception as exc:
            unavailable = outage_problem(scope["app"], exc)
            if unavailable is None:
                raise
            await unavailable.to_response()(scope, receive, send)
            return
        if held is None:
            await _Execution(store, receive, send).run(self.app, scope)
        else:
            await self._answer_again(held, path, scope, receive, send)

    async def _answer_again(self, held: Any, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The answer to a key already used: the stored one, or why there is none."""
        if held.method != scope["method"] or held.path != path:
            refusal: ProblemError = KeyReused(f"This key was used for {held.method} {held.path}.")
        elif held.status is None:
            refusal = KeyInProgress()
        else:
            digest = hashlib.sha256()
            try:
                if not await _drain(receive, digest):
                    return  # nobody is left to answer
            except HTTPException as exc:  # the body is over the size limit
                await PayloadTooLarge(str(exc.detail)).to_response()(scope, receive, send)
                return
            if digest.hexdigest() != held.body_sha256:
                refusal = KeyReused("This key was used for a request with another body.")
            elif held.response_body is None:
                location = dict(held.response_headers or []).get("location")
                refusal = AnswerNotKept(
                    f"The request was answered {held.status}; its answer was not kept"
                    " (it carried a secret, or was too large).",
                    original_status=held.status,
                    location=location,
                )
            else:
                await self._replay(held, send)
                return
        await refusal.to_response()(scope, receive, send)

    @staticmethod
    async def _replay(held: Any, send: Send) -> None:
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in held.response_headers]
        headers += [
            (b"content-length", str(len(held.response_body)).encode()),
            (REPLAYED_HEADER.lower().encode(), b"true"),
        ]
        await send({"type": "http.response.start", "status": held.status, "headers": headers})
        await send({"type": "http.response.body", "body": held.response_body})


class _Execution:
    """One request carried out under a key: its body hashed on the way in, its answer kept
    (or its key freed) before the end of the answer goes out."""

    def __init__(self, store: _Store, receive: Receive, send: Send) -> None:
        self.store = store
        self._receive = receive
        self._send = send
        self.digest = hashlib.sha256()
        self.body_read = False
        self.start: Message = {}
        self.held: list[bytes] = []  # the answer's body, held back while it is small enough to keep
        self.held_size = 0
        self.holding = True
        self.settled = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception:
            if not self.settled:
                await self.release()  # an error is a 500: a retry may run
            raise
        if not self.settled:
            await self.release()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.digest.update(message.get("body", b""))
            self.body_read = self.body_read or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        final = not message.get("more_body", False)
        if not self.holding:  # streaming an answer too large to keep
            if final:
                await self.settle(None)
            await self._send(message)
            return
        self.held.append(message.get("body", b""))
        self.held_size += len(self.held[-1])
        small = self.held_size <= MAX_STORED_BODY_BYTES
        if small and not final:
            return
        body, self.held = b"".join(self.held), []
        if final:
            await self.settle(body if small else None)
        self.holding = False
        await self._send(self.start)
        await self._send({"type": "http.response.body", "body": body, "more_body": not final})

    async def settle(self, body: bytes | None) -> None:
        """Keep a final answer for the retries to come, or free the key for one that may succeed."""
        self.settled = True
        status = self.start["status"]
        raw_headers = self.start.get("headers", ())
        if not _final(status):
            await self.release()
            return
        try:
            # What the handler did not read (it answered early) is hashed all the same.
            complete = self.body_read or await _drain(self._receive, self.digest)
        except HTTPException:  # the rest is over the size limit: the same body would be refused again
            complete = False
        if not complete:
            await self.release()
            return
        if any(
            name.lower() == b"cache-control" and b"no-store" in value.lower() for name, value in raw_headers
        ):
            body = None  # a secret (a client secret, a token) is not stored
        headers = [
            [name.decode("latin-1").lower(), value.decode("latin-1")]
            for name, value in raw_headers
            if name.lower() in _KEPT_HEADERS
        ]
        digest = self.digest.hexdigest()
        try:
            await self.store.complete(digest, status, headers, body)
        except Exception as exc:  # the answer still goes out; it is kept once the database is back
            log.warning(
                "idempotent answer not kept yet", extra={"status": status, "error": type(exc).__name__}
            )
            settle_later("completed", lambda: self.store.complete(digest, status, headers, body))

    async def release(self) -> None:
        try:
            await self.store.release()
        except Exception as exc:  # the key stays in progress until the database takes the deletion
            log.warning("idempotency key not released yet", extra={"error": type(exc).__name__})
            settle_later("released", self.store.release)

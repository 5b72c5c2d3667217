"""The request id of the work in progress, visible to logs and outgoing calls."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
# A client or gateway may pass its own id; anything else is replaced, so logs stay clean.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None):
    return _request_id.set(value)


def reset_request_id(token) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(candidate: str | bytes | None) -> str:
    """The id to use for a request: the incoming one if well-formed, else a new one."""
    if isinstance(candidate, bytes):
        candidate = candidate.decode("latin-1")
    if candidate and _SAFE_REQUEST_ID.match(candidate):
        return candidate
    return new_request_id()

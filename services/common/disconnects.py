"""A client that hangs up before its answer is complete: not a server error.

Recorded with nginx's status 499 ("client closed request") in the access log
and the metrics, so hang-ups are neither counted as 500s nor as the status of
a reply nobody received.
"""

from __future__ import annotations

import anyio
from starlette.requests import ClientDisconnect

CLIENT_CLOSED_REQUEST = 499

# What reading from or writing to a connection the client has closed raises; Starlette turns
# a server's OSError on send into ClientDisconnect.
_CLIENT_GONE_ERRORS = (ClientDisconnect, anyio.BrokenResourceError, anyio.ClosedResourceError)


def client_went_away(exc: BaseException) -> bool:
    """True for the error of a closed client connection, also when wrapped by another error
    (Starlette re-raises it as a RuntimeError when the response had already started)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _CLIENT_GONE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False

"""Conditional GET for representations whose ETag is their content's digest (scheduled pulls,
published results): the same bytes give the same strong ETag in every process, and a client
whose If-None-Match names it gets 304 with no body (RFC 9110 §13.1.2, weak comparison)."""

from __future__ import annotations

import hashlib

from fastapi import Response, status


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def if_none_match_tags(header: str | None) -> tuple[list[str], bool]:
    """The ETags an If-None-Match header names (``W/`` dropped), and whether it is ``*``."""
    if not header:
        return [], False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return tags, "*" in tags


def not_modified(header: str | None, current: str) -> bool:
    """Whether ``If-None-Match`` names the current representation."""
    tags, any_tag = if_none_match_tags(header)
    return any_tag or current in tags


def conditional_response(
    body: bytes | None,
    media_type: str,
    if_none_match: str | None,
    *,
    tag: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``body`` with its ETag (``tag``, or the body's digest), or 304 with no body when
    ``if_none_match`` names it (``body`` may then be None)."""
    tag = tag or strong_etag(body or b"")
    out = {"ETag": tag, **(headers or {})}
    if not_modified(if_none_match, tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=out)
    return Response(body, media_type=media_type, headers=out)

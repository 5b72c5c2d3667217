"""Optimistic concurrency with ETag / If-Match: a stale write fails with 412."""

from __future__ import annotations

from services.common.problems import PreconditionFailed, PreconditionRequired

# If-Match / If-None-Match: an entity tag is short (``W/"12"``); a list of them is allowed,
# not a page of text.
ETAG_HEADER_MAX_LENGTH = 1024


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, current_version: int) -> None:
    """Refuse an update that does not name the version it was based on, or names an old one."""
    if not if_match or if_match.strip() == "*":
        # "*" would let a write through whatever it read: an update names its version.
        raise PreconditionRequired("Send the ETag you read in an If-Match header (not *).")
    accepted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if etag(current_version) not in accepted:
        raise PreconditionFailed(
            f"The resource is at version {current_version}; read it again and reapply the change.",
            current_etag=etag(current_version),
        )

"""The events the legal-affairs domain consumes: a case handed to review enters the queue."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from services.common.event_schemas import ReviewRequested
from services.common.events import Event
from services.common.outbox import Outcome, parse_payload
from services.common.problems import ProblemError
from services.statistics.legal import service
from services.statistics.models import AUDIT


async def review_requested(session: AsyncSession, event: Event) -> Outcome:
    """One review round per request; the same request again (or another while the case's review
    is pending) makes nothing new."""
    request = parse_payload(ReviewRequested, event)
    if isinstance(request, Outcome):
        return request
    try:
        review = await service.open_review(session, AUDIT, event, request)
    except ProblemError as exc:
        return Outcome.rejected(exc.detail or "The request could not be queued.")
    if review is None:
        return Outcome.applied(f"Case {request.case_id} already has a pending review.")
    return Outcome.applied()

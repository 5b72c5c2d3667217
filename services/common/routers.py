"""Endpoints every service (and the gateway) carries: the caller's principal, the audit check, events."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from services.common.audit import ChainReport
from services.common.auth import Role
from services.common.deps import PrincipalDep, ReadSessionDep, SessionDep, require_national_roles
from services.common.events import EVENT_TYPES, EventCatalogue, catalogue_schema
from services.common.outbox import InboxEventRead, InboxOutcome, OutboxEventRead, OutboxState
from services.common.pagination import Page, PageParams, page_params
from services.common.problems import problem_responses

PageDep = Annotated[PageParams, Depends(page_params)]
CATALOGUE = catalogue_schema()
EventTypeName = Literal[tuple(EVENT_TYPES)]  # type: ignore[valid-type]


class EventFilters(BaseModel):
    type: EventTypeName | None = None  # type: ignore[valid-type]
    aggregate_type: str | None = Field(default=None, pattern=r"^[a-z][a-z_]{0,63}$", examples=["officer"])
    aggregate_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$", examples=["42"])


class PrincipalRead(BaseModel):
    account_id: str
    kind: str
    bureau_id: int
    bureau_path: str
    roles: list[str]
    body: str | None
    officer_id: int | None


def principal_router(service: str) -> APIRouter:
    """``GET /api/v1/<service>/me``: the principal this service sees in the caller's token."""
    router = APIRouter(prefix=f"/api/v1/{service}", tags=["principal"])

    @router.get(
        "/me",
        response_model=PrincipalRead,
        summary="The principal of the presented token",
        description=(
            "Who this service takes the caller to be (主体): the account, its kind (officer or "
            "provincial system), its bureau and that bureau's path in the network, its roles and, "
            "for an officer, the body (监督/执法/法制) and officer id. Useful to check a token."
        ),
        # Every service has this route: the id names the service so the merged document stays unique.
        operation_id=f"{service}_me",
        responses=problem_responses(),
    )
    async def me(principal: PrincipalDep) -> PrincipalRead:
        return PrincipalRead(
            account_id=principal.account_id,
            kind=principal.kind,
            bureau_id=principal.bureau_id,
            bureau_path=principal.bureau_path,
            roles=sorted(principal.roles),
            body=principal.body,
            officer_id=principal.officer_id,
        )

    return router


def audit_router(service: str) -> APIRouter:
    """``GET /api/v1/<service>/audit/verify``: recompute the chain, compare it with the newest
    checkpoint of its head (a truncation shows), and checkpoint it when valid.

    The whole service's log size and head hash: for the national regulator's
    administrators and legal-affairs officers, not for every bureau's.
    """
    router = APIRouter(prefix=f"/api/v1/{service}/audit", tags=["audit"])

    @router.get(
        "/verify",
        response_model=ChainReport,
        summary="Verify the hash chain of this service's audit log",
        description=(
            "Recomputes the hash chain of this service's audit log (审计日志) from the first entry and "
            "reports whether it holds, the entries verified, the head hash, or the first entry that does "
            "not match. For the "
            "national regulator's administrators and legal-affairs officers."
        ),
        operation_id=f"verify_{service}_audit_chain",
        dependencies=[require_national_roles(Role.ADMIN, Role.LEGAL)],
        responses=problem_responses(403),
    )
    async def verify_audit_chain(request: Request, session: SessionDep) -> ChainReport:
        checkpoints = getattr(request.app.state, "audit_checkpoints", None)
        return await request.app.state.audit.verify(session, checkpoints=checkpoints)

    return router


def events_router(service: str) -> APIRouter:
    """The events of this service: the catalogue, its outbox and its inbox.

    ``GET /api/v1/<service>/events/schema`` describes every event type (envelope and
    payload as JSON Schema); ``/events`` lists what this service sent, with its delivery
    state; ``/events/inbox`` what it received and what it made of it. Lists show the
    events of the caller's bureau subtree; national administrators see all.
    """
    router = APIRouter(prefix=f"/api/v1/{service}/events", tags=["events"])

    @router.get(
        "/schema",
        response_model=EventCatalogue,
        summary="The event catalogue as JSON Schema",
        description=(
            "The event catalogue (事件目录): every event type of the platform, which service "
            "produces it, which consume it, its "
            "payload's schema version and JSON Schema, and the envelope every event travels in. "
            "The same document on every service."
        ),
        operation_id=f"get_{service}_event_catalogue",
        responses=problem_responses(),
    )
    async def event_catalogue(_: PrincipalDep) -> EventCatalogue:
        return CATALOGUE

    @router.get(
        "",
        response_model=Page[OutboxEventRead],
        summary="Events this service sent (its outbox), newest first",
        description=(
            "The outbox (发件箱): each event written with the change it reports, and how far it got: "
            "`pending` (not "
            "yet handed to the queue), `enqueued` (handed to every consumer, not yet confirmed) "
            "or `delivered` (every consumer processed it). `attempts` counts hand-overs; "
            "`last_error` says why the last one was repeated."
        ),
        operation_id=f"list_{service}_events",
        responses=problem_responses(),
    )
    async def list_events(
        request: Request,
        session: ReadSessionDep,
        principal: PrincipalDep,
        page: PageDep,
        filters: Annotated[EventFilters, Query()],
        state: Annotated[OutboxState | None, Query(description="Delivery state")] = None,
    ) -> Page[OutboxEventRead]:
        items, next_cursor = await request.app.state.outbox.list(
            session,
            principal,
            state=state,
            filters=filters.model_dump(),
            cursor=page.cursor,
            limit=page.limit,
        )
        return Page(items=items, next_cursor=next_cursor)

    @router.get(
        "/inbox",
        response_model=Page[InboxEventRead],
        summary="Events this service received (its inbox), newest first",
        description=(
            "The inbox (收件箱): each event this service processed, once, with what it made of it: "
            "`applied`, "
            "`rejected` (refused by a rule of this service; `reason` says which) or `stale` "
            "(older than a version of the same object already applied, so it changed nothing)."
        ),
        operation_id=f"list_{service}_inbox_events",
        responses=problem_responses(),
    )
    async def list_inbox_events(
        request: Request,
        session: ReadSessionDep,
        principal: PrincipalDep,
        page: PageDep,
        filters: Annotated[EventFilters, Query()],
        outcome: Annotated[InboxOutcome | None, Query(description="What the service made of it")] = None,
    ) -> Page[InboxEventRead]:
        items, next_cursor = await request.app.state.inbox.list(
            session,
            principal,
            filters={**filters.model_dump(), "outcome": outcome},
            cursor=page.cursor,
            limit=page.limit,
        )
        return Page(items=items, next_cursor=next_cursor)

    return router

"""arq jobs of the gateway and its WorkerSettings.

Started by `python -m services.common.serve gateway --worker`. The gateway consumes
`registry.officer.changed`: an officer's login follows what the registry did to the
officer (a deactivation ends the officer's tokens, a move takes the login along).
"""

from __future__ import annotations

from arq import cron
from sqlmodel.ext.asyncio.session import AsyncSession

from gateway.accounts import apply_officer_standing
from gateway.config import get_settings
from gateway.models import AUDIT, INBOX
from services.common.event_schemas import OfficerChanged
from services.common.events import Event
from services.common.jobs import check_audit_chain, worker_settings
from services.common.outbox import Outcome


async def officer_changed(session: AsyncSession, event: Event) -> Outcome:
    officer = OfficerChanged.model_validate(event.payload)
    account = await apply_officer_standing(session, AUDIT, officer.officer_id, officer.model_dump())
    if account is None:
        return Outcome.applied("the officer has no login")
    return Outcome.applied()


WorkerSettings = type(
    "WorkerSettings",
    (),
    worker_settings(
        "gateway",
        get_settings(),
        AUDIT,
        inbox=INBOX,
        handlers={"registry.officer.changed": officer_changed},
        functions=[check_audit_chain],
        cron_jobs=[cron(check_audit_chain, hour={2}, minute={15}, unique=True)],
    ),
)

"""What a dossier asks the enforcement service: the enforcement chain (leads, cases and their
decisions) of registry records, over HTTP through the typed service client.

The call carries the caller's own credentials, not the registry's: enforcement shows each
caller the leads and cases of the caller's bureau subtree only, and that scope is applied
where the data lives. The chain is an addition to the dossier, not its substance: when
enforcement cannot be reached (or answers an error, or too slowly) the dossier is answered
without it and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request

from services.common.client import ServiceClient
from services.common.deps import PrincipalDep
from services.common.problems import ProblemError
from services.registry.dossiers.schemas import (
    ChainAnswer,
    ChainCase,
    ChainLead,
    ChainSubject,
    EnforcementChain,
)

CHAIN_PATH = "/api/v1/enforcement/chain"

log = logging.getLogger("registry.dossiers")


class EnforcementChains:
    """The enforcement chain of registry records as one caller may see it."""

    def __init__(self, client: ServiceClient, authorization: str, timeout_seconds: float) -> None:
        self._client = client
        self._authorization = authorization
        self._timeout = timeout_seconds

    async def _chain(self, subject: ChainSubject) -> ChainAnswer:
        return await self._client.get(
            CHAIN_PATH,
            params={"subject_type": subject.subject_type.value, "subject_id": subject.subject_id},
            model=ChainAnswer,
            authorization=self._authorization,
        )

    async def _answers(self, subjects: Sequence[ChainSubject]) -> list[ChainAnswer] | None:
        """Every subject's answer, or None once one fails or time runs out (the rest cancelled)."""
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self._timeout), asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._chain(subject)) for subject in subjects]
        except* (ProblemError, TimeoutError) as failures:
            failure = failures.exceptions[0]
        if failure is None:
            return [task.result() for task in tasks]
        log.warning(
            "enforcement chain unavailable",
            extra={
                "subjects": [f"{s.subject_type.value}:{s.subject_id}" for s in subjects],
                "error": type(failure).__name__,
                "problem": getattr(failure, "slug", None),
                "detail": getattr(failure, "detail", None) or str(failure),
            },
        )
        return None

    async def of(self, subjects: Sequence[ChainSubject]) -> EnforcementChain | None:
        """The leads and cases of ``subjects`` (each once, by id), or None when enforcement
        could not answer them all in time: a partial chain would read as a complete one."""
        answers = await self._answers(subjects)
        if answers is None:
            return None
        leads: dict[int, ChainLead] = {}
        cases: dict[int, ChainCase] = {}
        for answer in answers:
            leads.update((lead.id, lead) for lead in answer.leads)
            cases.update((case.id, case) for case in answer.cases)
        return EnforcementChain(
            subjects=list(subjects),
            leads=[leads[i] for i in sorted(leads)],
            cases=[cases[i] for i in sorted(cases)],
        )


async def enforcement_chains(request: Request, _: PrincipalDep) -> EnforcementChains:
    """The chains as the authenticated caller may see them: the caller's own Authorization
    header (checked first, through the principal) goes to enforcement with each call."""
    return EnforcementChains(
        request.app.state.services,
        request.headers["authorization"],
        request.app.state.settings.dossier_enforcement_timeout_seconds,
    )


EnforcementChainsDep = Annotated[EnforcementChains, Depends(enforcement_chains)]

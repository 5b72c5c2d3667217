"""What the enforcement service asks the registry, over HTTP through the typed service client.

The registry is the supervision body's (认证监管机构) record of who and what is
supervised: the enforcement body checks there that a lead's subject exists, and
that an officer taking a step is active, holds an enforcement credential
(执法证) and holds a post whose duties include the step (执法责任制).

Officer standings are kept a short while (``STANDING_TTL_SECONDS``): a step is
taken many times a minute, a post's duties change rarely. While the registry
cannot be reached, a standing confirmed within ``STANDING_GRACE_SECONDS`` is
used, so a decision is not held up by a registry outage (its certificate
actions wait in the outbox); an officer never confirmed is refused (503).
"""

from __future__ import annotations

import time
from enum import StrEnum

from pydantic import BaseModel

from services.common.client import ServiceClient
from services.common.problems import GatewayTimeout, NotFound, ServiceUnavailable, UnprocessableEntity

STANDING_TTL_SECONDS = 30.0
STANDING_GRACE_SECONDS = 3600.0
REGISTRY = "/api/v1/registry"


class SubjectType(StrEnum):
    """Registry records a lead or a case can concern."""

    CERTIFICATION_BODY = "certification_body"
    AUDITOR = "auditor"
    ENTERPRISE = "enterprise"
    CERTIFICATE = "certificate"
    PRODUCT = "product"


# Where the registry serves each kind of record.
SUBJECT_PATHS = {
    SubjectType.CERTIFICATION_BODY: "certification-bodies",
    SubjectType.AUDITOR: "auditors",
    SubjectType.ENTERPRISE: "enterprises",
    SubjectType.CERTIFICATE: "certificates",
    SubjectType.PRODUCT: "products",
}


class Subject(BaseModel):
    """A registry record as a lead or a case names it."""

    type: SubjectType
    id: int
    name: str
    number: str | None = None  # a certificate's number, for the decision that acts on it
    status: str | None = None


class StandingPost(BaseModel):
    id: int
    name: str
    steps: list[str] = []


class OfficerStanding(BaseModel):
    officer_id: int
    name: str
    bureau_id: int
    bureau_path: str
    body: str
    active: bool
    credential_number: str | None = None
    holds_credential: bool = False
    post: StandingPost | None = None


class Bureau(BaseModel):
    """A bureau of the network as the registry holds it."""

    id: int
    name: str
    path: str


class RegistryClient:
    """The registry calls of the enforcement service, with their short-lived cache."""

    def __init__(self, services: ServiceClient) -> None:
        self._services = services
        self._standings: dict[int, tuple[float, OfficerStanding]] = {}

    async def officer_standing(self, officer_id: int, *, loc: str = "body.officer_ids") -> OfficerStanding:
        cached = self._standings.get(officer_id)
        now = time.monotonic()
        if cached and cached[0] > now:
            return cached[1]
        try:
            standing = await self._services.get(
                f"{REGISTRY}/officers/{officer_id}/standing", model=OfficerStanding
            )
        except (ServiceUnavailable, GatewayTimeout):
            if cached and cached[0] - STANDING_TTL_SECONDS + STANDING_GRACE_SECONDS > now:
                return cached[1]
            raise
        except NotFound:
            raise UnprocessableEntity(
                f"The registry holds no officer {officer_id}.",
                errors=[{"loc": loc, "message": f"No officer {officer_id}", "type": "officer_not_found"}],
            ) from None
        self._standings[officer_id] = (now + STANDING_TTL_SECONDS, standing)
        return standing

    def forget_officer(self, officer_id: int) -> None:
        self._standings.pop(officer_id, None)

    async def subject(self, subject_type: SubjectType, subject_id: int, *, loc: str) -> Subject:
        """The record, or a 422 naming ``loc`` when the registry holds none."""
        try:
            found = await self._services.get(f"{REGISTRY}/{SUBJECT_PATHS[subject_type]}/{subject_id}")
        except NotFound:
            raise UnprocessableEntity(
                f"The registry holds no {subject_type} {subject_id}.",
                errors=[
                    {"loc": loc, "message": f"No {subject_type} {subject_id}", "type": "subject_not_found"}
                ],
            ) from None
        return Subject(
            type=subject_type,
            id=subject_id,
            name=str(found.get("name") or found.get("number") or f"{subject_type} {subject_id}")[:256],
            number=found.get("number") if subject_type == SubjectType.CERTIFICATE else None,
            status=found.get("status"),
        )

    async def bureau(self, bureau_id: int) -> Bureau:
        """The bureau (its name heads the case documents), or 404 when the registry holds none."""
        try:
            return await self._services.get(f"{REGISTRY}/bureaus/{bureau_id}", model=Bureau)
        except NotFound:
            raise NotFound(f"Bureau {bureau_id} not found.") from None

"""Events between the services: the envelope and the one catalogue of event types.

A service that changes something another service must hear of writes an
:class:`Event` to its outbox in the same transaction as the change
(``services.common.outbox``); the relay hands it to each consumer's arq queue
(``services.common.relay``); the consumer applies it once, recording it in its
inbox (``services.common.jobs.handle_event``). :data:`EVENT_TYPES` says, for
every type, who produces it, who consumes it, and what its payload is.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from services.common import event_schemas as schemas


class Event(BaseModel):
    """The envelope every event travels in."""

    id: uuid.UUID
    type: str = Field(description="A type of the catalogue, e.g. `registry.officer.changed`")
    version: int = Field(description="Schema version of the payload")
    aggregate_type: str = Field(description="Kind of the object that changed, e.g. `officer`")
    aggregate_id: str
    aggregate_version: int = Field(description="The object's version after the change")
    bureau_id: int | None
    bureau_path: str | None = Field(description="Tree path of the object's bureau, for scope")
    occurred_at: AwareDatetime
    request_id: str | None = Field(description="The request that caused the change")
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class EventType(NamedTuple):
    producer: str
    consumers: tuple[str, ...]
    payload: type[schemas.Payload]
    version: int
    effect: str


EVENT_TYPES: dict[str, EventType] = {
    "registry.officer.changed": EventType(
        "registry",
        ("gateway",),
        schemas.OfficerChanged,
        1,
        "A deactivated or moved officer's login is disabled or follows the move.",
    ),
    "registry.inspection.referred": EventType(
        "registry",
        ("enforcement",),
        schemas.InspectionReferred,
        1,
        "A non-compliant inspection becomes a lead.",
    ),
    "registry.certificate.status_changed": EventType(
        "registry",
        ("enforcement", "statistics"),
        schemas.CertificateStatusChanged,
        1,
        "A case sees its certificate's state; statistics counts suspensions and revocations.",
    ),
    "registry.certificate_action.applied": EventType(
        "registry",
        ("enforcement",),
        schemas.CertificateActionApplied,
        1,
        "The case shows that its decision reached the certificate.",
    ),
    "registry.certificate_action.rejected": EventType(
        "registry",
        ("enforcement",),
        schemas.CertificateActionRejected,
        1,
        "The case shows why its decision could not reach the certificate.",
    ),
    "enforcement.certificate_action.decided": EventType(
        "enforcement",
        ("registry",),
        schemas.CertificateActionDecided,
        1,
        "The registry suspends, revokes or restores the certificate and answers with "
        "`registry.certificate_action.applied` or `registry.certificate_action.rejected`.",
    ),
    "enforcement.lead.changed": EventType(
        "enforcement",
        ("statistics",),
        schemas.LeadChanged,
        1,
        "Lead facts.",
    ),
    "enforcement.case.changed": EventType(
        "enforcement",
        ("statistics",),
        schemas.CaseChanged,
        1,
        "Case facts.",
    ),
    "enforcement.review.requested": EventType(
        "enforcement",
        ("statistics",),
        schemas.ReviewRequested,
        2,
        "The case enters the legal-review queue.",
    ),
    "statistics.review.answered": EventType(
        "statistics",
        ("enforcement",),
        schemas.ReviewAnswered,
        2,
        "Opens (or keeps closed) the case's decision gate.",
    ),
    "statistics.filing.answered": EventType(
        "statistics",
        ("enforcement",),
        schemas.FilingAnswered,
        1,
        "A filing accepted or returned, shown on the case.",
    ),
}


class UnknownEventType(ValueError):
    pass


def event_type(name: str) -> EventType:
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise UnknownEventType(f"{name!r} is not in the event catalogue") from None


def produced_by(service: str) -> list[str]:
    return [name for name, spec in EVENT_TYPES.items() if spec.producer == service]


def consumed_by(service: str) -> list[str]:
    return [name for name, spec in EVENT_TYPES.items() if service in spec.consumers]


# --- the catalogue as a document ---------------------------------------------


class EventTypeDoc(BaseModel):
    producer: str
    consumers: list[str]
    version: int
    effect: str
    payload: dict[str, Any] = Field(description="JSON Schema of the payload")


class EventCatalogue(BaseModel):
    """What every service publishes about the events, so a consumer can be written from it."""

    envelope: dict[str, Any] = Field(description="JSON Schema of the envelope every event travels in")
    events: dict[str, EventTypeDoc] = Field(description="Each event type: who sends it, who reads it")


def catalogue_schema() -> EventCatalogue:
    """The catalogue rendered as JSON Schema: the envelope, and each type's payload."""
    return EventCatalogue(
        envelope=Event.model_json_schema(),
        events={
            name: EventTypeDoc(
                producer=spec.producer,
                consumers=list(spec.consumers),
                version=spec.version,
                effect=spec.effect,
                payload=spec.payload.model_json_schema(),
            )
            for name, spec in EVENT_TYPES.items()
        },
    )

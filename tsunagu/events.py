"""The one event envelope and the subjects every service publishes on.

An envelope's ``id`` is also the JetStream ``Nats-Msg-Id`` header, so the server drops a duplicate
publish (the outbox relay may publish a row twice after a crash). ``entity_version`` lets consumers
ignore an event older than what they already hold. Event data schemas live in ``tsunagu.contracts``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tsunagu.logging import request_id_var

ENVELOPE_VERSION = 1


class Subjects:
    """Subject names, one constant each, so a typo is an import error, not a silent miss."""

    EXPERT_UPSERTED = "profiles.expert.upserted"  # matching features (internal, may include non-public fields)
    EXPERT_PUBLISHED = "profiles.expert.published"  # public view only: what search may index
    EXPERT_DEACTIVATED = "profiles.expert.deactivated"
    EXPERT_REACTIVATED = "profiles.expert.reactivated"
    EXPERT_CONFIRMATION_DUE = "profiles.expert.confirmation_due"
    ORGANIZATION_UPSERTED = "profiles.organization.upserted"
    REQUEST_SUBMITTED = "matching.request.submitted"
    REQUEST_RANKED = "matching.request.ranked"
    EXPERT_RANKING_CHANGED = "matching.expert.changed"  # matching-internal: re-rank what the change may move
    REQUEST_UPDATED = "matching.request.updated"
    REQUEST_CANCELLED = "matching.request.cancelled"
    REQUEST_MATCHED = "matching.request.matched"
    REQUEST_REOPENED = "matching.request.reopened"
    REQUEST_COMPLETED = "matching.request.completed"
    PROPOSAL_PROPOSED = "matching.proposal.proposed"
    PROPOSAL_ACCEPTED = "matching.proposal.accepted"
    PROPOSAL_DECLINED = "matching.proposal.declined"
    PROPOSAL_WITHDRAWN = "matching.proposal.withdrawn"
    PROPOSAL_EXPIRED = "matching.proposal.expired"
    PROPOSAL_CONFIRMED = "matching.proposal.confirmed"
    PROPOSAL_CLOSED = "matching.proposal.closed"
    ENGAGEMENT_CREATED = "matching.engagement.created"
    ENGAGEMENT_COMPLETED = "matching.engagement.completed"
    ENGAGEMENT_CANCELLED = "matching.engagement.cancelled"
    ENGAGEMENT_RATED = "matching.engagement.rated"
    # Family prefixes: matching.request.<event>, matching.proposal.<event>, matching.engagement.<event>.
    REQUEST_PREFIX = "matching.request"
    PROPOSAL_PREFIX = "matching.proposal"
    ENGAGEMENT_PREFIX = "matching.engagement"
    DEAD_LETTER_PREFIX = "deadletter"
    # 相談会 (consultation days) and マナビDX Quest hub projects (issue 11): contracts SessionChangedV1 and
    # HubProjectChangedV1 in tsunagu/contracts.py.
    SESSION_CREATED = "matching.session.created"
    SESSION_PUBLISHED = "matching.session.published"  # an assignment was solved and published
    SESSION_CHANGED = "matching.session.changed"  # a published assignment was solved again: meetings moved
    SESSION_REGISTERED = "matching.session.registered"  # an SME registered
    SESSION_CANCELLED = "matching.session.cancelled"
    SESSION_PREFIX = "matching.session"
    PROJECT_CREATED = "matching.project.created"
    PROJECT_UPDATED = "matching.project.updated"
    PROJECT_TEAM_PROPOSED = "matching.project.team_proposed"
    PROJECT_TEAM_CONFIRMED = "matching.project.team_confirmed"
    PROJECT_CLOSED = "matching.project.closed"
    PROJECT_PREFIX = "matching.project"
    # Trust (issue 9): an admin's decision on a claimed profile or a correction, and an invitation to an
    # organisation; the gateway tells the person concerned.
    EXPERT_VERIFIED = "profiles.expert.verified"
    EXPERT_REJECTED = "profiles.expert.rejected"
    EXPERT_CORRECTION_DECIDED = "profiles.expert.correction_decided"
    ORGANIZATION_INVITED = "profiles.organization.invited"


# One stream per producing service, plus the dead letters.
STREAMS: dict[str, list[str]] = {
    "PROFILES": ["profiles.>"],
    "MATCHING": ["matching.>"],
    "DEADLETTER": ["deadletter.>"],
}


class EventEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=200)
    envelope_version: int = ENVELOPE_VERSION
    schema_version: int = Field(default=1, ge=1)
    source: str = Field(min_length=1, max_length=64)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject_id: str = Field(min_length=1, max_length=200)
    entity_version: int = Field(ge=0)
    correlation_id: str | None = Field(default=None, max_length=200)
    data: dict[str, Any]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        return cls.model_validate_json(raw)

    @classmethod
    def for_change(cls, subject: str, source: str, subject_id: str, version: int, data: BaseModel) -> EventEnvelope:
        """The event of a state change made while serving the current request (its id is the correlation id)."""
        return cls(
            type=subject,
            source=source,
            subject_id=subject_id,
            entity_version=version,
            correlation_id=request_id_var.get(),
            data=data.model_dump(mode="json"),
        )

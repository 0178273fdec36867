"""Versioned data schemas of the events that cross service boundaries (the published language).

These are contracts, not domain models: a producer builds one from its own model, a consumer reads it
into its own model. A breaking change gets a new schema_version; consumers refuse versions they do not
know (the event goes to the dead-letter subject instead of being misread). See docs/events.md.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tsunagu.events import EventEnvelope

ExpertKind = Literal["sekisupe", "dx_talent"]
Delivery = Literal["onsite", "remote", "either"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpertFeaturesV1(_Contract):
    """profiles.expert.upserted: what the scorer needs, including fields the expert keeps private."""

    expert_id: str
    kind: ExpertKind
    display_name: str
    active: bool
    prefectures: list[str] = Field(default_factory=list)
    onsite: bool = False
    remote: bool = False
    topics: dict[str, int] = Field(default_factory=dict)  # topic id -> depth 1..3
    skills: list[str] = Field(default_factory=list)
    industries: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    dss_roles: dict[str, int] = Field(default_factory=dict)  # role id -> level 1..4
    capacity: int = 0
    registration_expires_on: date | None = None
    last_confirmed_at: datetime | None = None
    fee_min_yen: int | None = None
    fee_max_yen: int | None = None


class ExpertPublicV1(_Contract):
    """profiles.expert.published: only the fields the expert made public (plus the mandatory ones)."""

    id: str
    kind: ExpertKind
    name: str
    name_kana: str | None = None
    registration_number: str | None = None
    affiliation: str | None = None
    bio: str | None = None
    prefectures: list[str] | None = None
    onsite: bool | None = None
    remote: bool | None = None
    topics: list[str] | None = None
    topic_labels: list[str] | None = None
    skills: list[str] | None = None
    industries: list[str] | None = None
    services: list[str] | None = None
    dss_roles: list[str] | None = None
    active: bool
    updated_at: datetime


class ExpertStatusChangedV1(_Contract):
    """profiles.expert.deactivated / reactivated / confirmation_due, with the reason in words."""

    expert_id: str
    reason_code: str
    reason_ja: str
    reason_en: str


class OrganizationV1(_Contract):
    """profiles.organization.upserted: an SME and the users who act for it (matching checks membership)."""

    organization_id: str
    name: str
    prefecture: str
    industry: str | None = None
    employees: int | None = None
    digitalization_stage: int | None = None
    security_action: Literal["none", "one_star", "two_star"] = "none"
    scs_target: Literal["none", "scs_3", "scs_4"] = "none"
    member_user_ids: list[str] = Field(default_factory=list)


class RequestSubmittedV1(_Contract):
    """matching.request.submitted: the scorer ranks experts for it."""

    request_id: str
    organization_id: str | None = None
    prefecture: str
    delivery: Delivery
    topics: list[str]
    skills: list[str] = Field(default_factory=list)
    industry: str | None = None


class RequestRankedV1(_Contract):
    """matching.request.ranked: a ranking exists; consumers fetch it from matching if they need detail."""

    request_id: str
    ranking_id: str
    weights_version: str
    candidate_count: int
    top_expert_ids: list[str]


# subject -> {schema_version: model}: what a consumer may validate an envelope's data against.
SCHEMAS: dict[str, dict[int, type[BaseModel]]] = {
    "profiles.expert.upserted": {1: ExpertFeaturesV1},
    "profiles.expert.published": {1: ExpertPublicV1},
    "profiles.expert.deactivated": {1: ExpertStatusChangedV1},
    "profiles.expert.reactivated": {1: ExpertStatusChangedV1},
    "profiles.expert.confirmation_due": {1: ExpertStatusChangedV1},
    "profiles.organization.upserted": {1: OrganizationV1},
    "matching.request.submitted": {1: RequestSubmittedV1},
    "matching.request.ranked": {1: RequestRankedV1},
}


class PermanentEventError(Exception):
    """The event can never be handled (unknown schema, impossible data): dead-letter it at once."""


def parse_event_data(envelope: EventEnvelope, expected_type: str) -> BaseModel:
    """The envelope's data as its versioned contract, or a PermanentEventError (so it is dead-lettered,
    not misread) when the type, the schema version or the data is not what the consumer knows."""
    if envelope.type != expected_type:
        raise PermanentEventError(f"unexpected event type {envelope.type} (expected {expected_type})")
    model = SCHEMAS.get(envelope.type, {}).get(envelope.schema_version)
    if model is None:
        raise PermanentEventError(f"unknown schema {envelope.type} v{envelope.schema_version}")
    try:
        return model.model_validate(envelope.data)
    except ValidationError as error:
        raise PermanentEventError(f"invalid data for {envelope.type}: {error}") from error

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
    # Brokering (issue 8), optional so older events still parse:
    owner_user_id: str | None = None  # the expert's account: only they may accept a proposal
    conflicted_organization_ids: list[str] = Field(default_factory=list)  # private: never published
    employer_organization_id: str | None = None
    # Which visibility settings (keys of profiles' VISIBILITY_FIELDS) each reader may see, so the
    # scorer's reasons reveal to an SME only public facts and to a broker only broker-level ones.
    public_fields: list[str] = Field(default_factory=list)
    broker_fields: list[str] = Field(default_factory=list)
    # マナビDX Quest (issue 11): a learner who finished the case study may join hub project teams.
    case_study_completed: bool = False


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
    # So the notification consumer can reach the expert without calling back (issue 8).
    owner_user_id: str | None = None
    expert_name: str | None = None


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
    # For the search index of open requests (issue 12), as in RequestChangedV1; optional.
    title: str | None = None
    summary: str | None = None
    updated_at: datetime | None = None


class RequestRankedV1(_Contract):
    """matching.request.ranked: a ranking exists; consumers fetch it from matching if they need detail."""

    request_id: str
    ranking_id: str
    weights_version: str
    candidate_count: int
    top_expert_ids: list[str]


class ExpertRankingChangedV1(_Contract):
    """matching.expert.changed (internal to matching): something an expert's rankings read has changed — their
    profile projection, their open load (accepted proposals, active engagements) or their SME ratings — so the
    scorer re-ranks the open requests that change may move (scoring/rerank.py)."""

    expert_id: str
    cause: Literal["profile", "load", "rating"]


class _PeopleConcerned(_Contract):
    """The ids of the people an event concerns travel with it, so the notification consumer (gateway) can
    tell them without calling back: the requesting SME's users and the request's prefecture (its brokers)."""

    request_id: str
    request_title: str
    prefecture: str
    organization_id: str | None = None
    sme_user_ids: list[str] = Field(default_factory=list)
    actor_id: str
    reason: str | None = None


class RequestChangedV1(_PeopleConcerned):
    """matching.request.updated / cancelled / matched / reopened / completed."""

    status: str
    from_status: str | None = None
    # What the search service indexes for brokers and hub staff of the request's prefecture (issue 12);
    # optional, so older events still parse. ``sme_name`` only when the SME allowed it (None otherwise).
    summary: str | None = None
    delivery: Delivery | None = None
    topics: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    industry: str | None = None
    sme_name: str | None = None
    updated_at: datetime | None = None


class ProposalChangedV1(_PeopleConcerned):
    """matching.proposal.proposed / accepted / declined / withdrawn / expired / confirmed / closed."""

    proposal_id: str
    expert_id: str
    expert_name: str
    expert_user_id: str | None = None
    broker_id: str
    state: str
    from_state: str | None = None
    expires_at: datetime | None = None


class EngagementChangedV1(_PeopleConcerned):
    """matching.engagement.created / completed / cancelled / rated."""

    engagement_id: str
    proposal_id: str
    expert_id: str
    expert_name: str
    expert_user_id: str | None = None
    broker_id: str | None = None
    state: str
    from_state: str | None = None
    stars: int | None = None
    side: Literal["sme", "expert"] | None = None


# --- 相談会 (consultation days) and マナビDX Quest hub projects (issue 11) -------------------------------


class SessionMeetingV1(_Contract):
    """One meeting of a 相談会 as the people it concerns need it (times are the venue's local times)."""

    slot: int
    start: str  # "10:00"
    end: str
    expert_id: str
    expert_name: str
    expert_user_id: str | None = None
    registration_id: str
    sme_user_id: str
    organization_name: str | None = None


class SessionUnservedV1(_Contract):
    """An SME the plan could not give a meeting, with the reason in words it can act on."""

    registration_id: str
    sme_user_id: str
    reason_ja: str
    reason_en: str


class SessionChangedV1(_Contract):
    """matching.session.created / published / changed / cancelled: a consultation day. ``published`` and
    ``changed`` carry the meetings; ``affected_user_ids`` are the experts' and SMEs' accounts whose meetings
    are new, moved or gone since the last publication (so the notifier tells only them)."""

    session_id: str
    title: str
    date: date
    venue_prefecture: str
    broker_id: str
    state: str
    meetings: list[SessionMeetingV1] = Field(default_factory=list)
    affected_user_ids: list[str] = Field(default_factory=list)
    unserved_sme_user_ids: list[str] = Field(default_factory=list)
    occurred_at: datetime
    # Optional, so events written before them still parse: where the day is held, and why each unserved
    # SME got no meeting (the notifier tells them).
    venue: str = ""
    unserved: list[SessionUnservedV1] = Field(default_factory=list)
    # The accounts of the invited experts (those that have one), so they hear of the day when it is created
    # and if it is cancelled, before any plan gives them a meeting.
    invited_expert_user_ids: list[str] = Field(default_factory=list)


class HubProjectChangedV1(_Contract):
    """matching.project.created / updated / team_proposed / team_confirmed / closed: a マナビDX Quest hub
    project (地域企業協働プログラム). What the search service indexes for hub staff and brokers of the region:
    no learner's data, and the SME's name only when the SME allowed it (``sme_name`` is None otherwise)."""

    project_id: str
    title: str
    summary: str
    prefecture: str
    remote_ok: bool = False
    topics: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)  # デジタルスキル標準 role ids the team needs
    state: str
    hub_organization_id: str | None = None
    sme_name: str | None = None
    team_size: int = 5
    start_on: date | None = None
    weeks: int | None = None
    # Who the change concerns (the notifier tells them; the search index ignores them).
    member_user_ids: list[str] = Field(default_factory=list)
    actor_id: str | None = None
    occurred_at: datetime


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
    "matching.expert.changed": {1: ExpertRankingChangedV1},
    **{
        f"matching.request.{event}": {1: RequestChangedV1}
        for event in ("updated", "cancelled", "matched", "reopened", "completed")
    },
    **{
        f"matching.proposal.{event}": {1: ProposalChangedV1}
        for event in ("proposed", "accepted", "declined", "withdrawn", "expired", "confirmed", "closed")
    },
    **{
        f"matching.engagement.{event}": {1: EngagementChangedV1}
        for event in ("created", "completed", "cancelled", "rated")
    },
    # 相談会 and hub projects (issue 11)
    **{
        f"matching.session.{event}": {1: SessionChangedV1}
        for event in ("created", "registered", "published", "changed", "cancelled")
    },
    **{
        f"matching.project.{event}": {1: HubProjectChangedV1}
        for event in ("created", "updated", "team_proposed", "team_confirmed", "closed")
    },
}


# --- trust (issue 9): verification, corrections, invitations ----------------------------------------


class ExpertVerificationV1(_Contract):
    """profiles.expert.verified / rejected: an admin decided on a claimed profile (an entry an expert account
    created, or a contested claim of a registration number another entry holds). ``user_id`` is the account
    the decision concerns (the claimant), so the gateway can tell them without calling back."""

    expert_id: str
    user_id: str
    expert_name: str
    registration_number: str | None = None
    claim_id: str | None = None  # set for a contested claim
    reason: str | None = None  # why it was rejected


class CorrectionDecidedV1(_Contract):
    """profiles.expert.correction_decided: an admin accepted or rejected an expert's correction request."""

    correction_id: str
    expert_id: str
    user_id: str
    field: str
    decision: Literal["accepted", "rejected"]
    reason: str | None = None


class OrganizationInvitationV1(_Contract):
    """profiles.organization.invited: a user is invited to act for an SME organisation (they must accept)."""

    invitation_id: str
    organization_id: str
    organization_name: str
    user_id: str
    invited_by: str


SCHEMAS.update(
    {
        "profiles.expert.verified": {1: ExpertVerificationV1},
        "profiles.expert.rejected": {1: ExpertVerificationV1},
        "profiles.expert.correction_decided": {1: CorrectionDecidedV1},
        "profiles.organization.invited": {1: OrganizationInvitationV1},
    }
)


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

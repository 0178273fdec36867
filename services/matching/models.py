"""Tables of the matching service (its own database; nobody else reads them).

The brokering tables (Proposal, Engagement, Rating, Transition) carry ``entity_version`` so every state
change is a compare-and-set in repository.py: of two racing transitions exactly one writes. Partial unique
indexes hold the invariants the rules rely on even under a race: one open proposal per (request, expert),
one active engagement per request, one rating per side.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field

from tsunagu.db import UtcDateTime, service_base, utcnow
from tsunagu.outbox import OutboxFields, ProcessedEventFields

MatchingModel = service_base("matching")


def _json(default_factory):
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def _timestamp(**kwargs: Any):
    return Field(default_factory=utcnow, sa_type=UtcDateTime, **kwargs)


class OutboxRecord(OutboxFields, MatchingModel, table=True):
    __tablename__ = "outbox"


class ProcessedEvent(ProcessedEventFields, MatchingModel, table=True):
    __tablename__ = "processed_events"


class ExpertFeature(MatchingModel, table=True):
    """Projection of profiles.expert.upserted: what the scorer ranks on (may include non-public fields)."""

    __tablename__ = "expert_features"

    expert_id: str = Field(primary_key=True, max_length=64)
    entity_version: int
    kind: str = Field(max_length=20)
    display_name: str = Field(max_length=200)
    active: bool = Field(index=True)
    prefectures: list[str] = _json(list)
    onsite: bool = False
    remote: bool = False
    topics: dict[str, int] = _json(dict)
    skills: list[str] = _json(list)
    industries: list[str] = _json(list)
    services: list[str] = _json(list)
    dss_roles: dict[str, int] = _json(dict)
    capacity: int = 0
    registration_expires_on: date | None = None
    last_confirmed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    fee_min_yen: int | None = None
    fee_max_yen: int | None = None
    # Brokering: the expert's own account (only they accept a proposal), organisations they will not advise,
    # and the one that employs them (never ranked for, nor proposed to, it).
    owner_user_id: str | None = Field(default=None, max_length=64, index=True)
    conflicted_organization_ids: list[str] = _json(list)
    employer_organization_id: str | None = Field(default=None, max_length=64)
    # Which visibility fields each reader may see (from profiles), so reasons are rendered per viewer.
    public_fields: list[str] = _json(list)
    broker_fields: list[str] = _json(list)
    # マナビDX Quest: finished the case study (2層) programme, so may join hub projects (issue 11).
    case_study_completed: bool = False
    # Increases with every change, so a scorer loads only rows changed since it last looked.
    change_seq: int = Field(default=0, index=True)
    changed_at: datetime = _timestamp()


class OrganizationProjection(MatchingModel, table=True):
    """Projection of profiles.organization.upserted: who may act for which SME."""

    __tablename__ = "organizations"

    organization_id: str = Field(primary_key=True, max_length=64)
    entity_version: int
    name: str = Field(max_length=200)
    prefecture: str = Field(max_length=2)
    industry: str | None = Field(default=None, max_length=100)


class OrganizationMember(MatchingModel, table=True):
    """A user who may act for an SME (from the same event), indexed both ways."""

    __tablename__ = "organization_members"

    organization_id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(primary_key=True, max_length=64, index=True)


class SmeRequest(MatchingModel, table=True):
    """An SME's consultation request (相談依頼)."""

    __tablename__ = "requests"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    organization_id: str | None = Field(default=None, max_length=64, index=True)
    created_by: str = Field(max_length=64, index=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_type=Text)
    prefecture: str = Field(max_length=2, index=True)
    delivery: str = Field(max_length=10)
    topics: list[str] = _json(list)  # explicit topics + those derived from the self-diagnosis
    explicit_topics: list[str] = _json(list)
    self_diagnosis: dict[str, str] = _json(dict)
    skills: list[str] = _json(list)
    industry: str | None = Field(default=None, max_length=100)
    budget_yen_max: int | None = None
    urgency: str = Field(default="normal", max_length=10)
    status: str = Field(default="submitted", max_length=20, index=True)
    entity_version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    # Set when an expert change may move this open request's ranking (scoring/rerank.py); cleared by the
    # re-ranking that follows. Not a change of the request itself: no version bump, no event.
    rerank_due_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)


class Ranking(MatchingModel, table=True):
    """One scorer run for one request, with every entry's per-factor contributions."""

    __tablename__ = "rankings"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    source_event_id: str = Field(max_length=64, unique=True)  # one ranking per submitted event
    weights_version: str = Field(max_length=50)
    candidate_count: int
    entries: list[dict[str, Any]] = _json(list)
    computed_at: datetime = _timestamp()


_OPEN_PROPOSAL = "state IN ('proposed', 'accepted')"
_ACTIVE_ENGAGEMENT = "state = 'active'"


class Proposal(MatchingModel, table=True):
    """A broker proposes an expert for a request; the expert accepts or declines, the SME confirms."""

    __tablename__ = "proposals"
    __table_args__ = (
        Index(
            "uq_proposals_open_per_expert",
            "request_id",
            "expert_id",
            unique=True,
            sqlite_where=text(_OPEN_PROPOSAL),
            postgresql_where=text(_OPEN_PROPOSAL),
        ),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    expert_id: str = Field(max_length=64, index=True)
    broker_id: str = Field(max_length=64, index=True)
    message: str = Field(default="", sa_type=Text)
    state: str = Field(default="proposed", max_length=20, index=True)
    reason: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime = Field(sa_type=UtcDateTime, index=True)
    entity_version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Engagement(MatchingModel, table=True):
    """The confirmed match: an expert advising an SME on one request (one active engagement per request;
    after a cancellation the request is open again and a later confirmation makes a new one)."""

    __tablename__ = "engagements"
    __table_args__ = (
        Index(
            "uq_engagements_active_per_request",
            "request_id",
            unique=True,
            sqlite_where=text(_ACTIVE_ENGAGEMENT),
            postgresql_where=text(_ACTIVE_ENGAGEMENT),
        ),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    proposal_id: str = Field(max_length=64, unique=True)
    expert_id: str = Field(max_length=64, index=True)
    organization_id: str | None = Field(default=None, max_length=64, index=True)
    sme_user_id: str = Field(max_length=64, index=True)  # who confirmed (the quota counts per creator too)
    quota_owner: str = Field(max_length=80, index=True)  # "org:<id>" or "user:<sub>": whose quota it uses
    state: str = Field(default="active", max_length=20, index=True)
    reason: str | None = Field(default=None, sa_type=Text)
    fiscal_year: int = Field(index=True)  # Japanese fiscal year (April-March) of the confirmation
    entity_version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Rating(MatchingModel, table=True):
    """One side's rating of a completed engagement; the SME side feeds the scorer's outcome factor."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("engagement_id", "side", name="uq_ratings_engagement_side"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    engagement_id: str = Field(max_length=64, index=True)
    side: str = Field(max_length=10)
    rater_id: str = Field(max_length=64)
    expert_id: str = Field(max_length=64, index=True)
    stars: int
    comment: str = Field(default="", sa_type=Text)
    created_at: datetime = _timestamp()


class Transition(MatchingModel, table=True):
    """The audit trail (append-only): every state change of a request, its proposals and engagements,
    written in the same transaction as the change."""

    __tablename__ = "transitions"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    request_id: str = Field(max_length=64, index=True)
    object_type: str = Field(max_length=20)
    object_id: str = Field(max_length=64)
    actor_id: str = Field(max_length=64)
    actor_role: str = Field(max_length=20)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    reason: str | None = Field(default=None, sa_type=Text)
    at: datetime = _timestamp()


# --- 相談会 (consultation days) and マナビDX Quest hub projects (issue 11) ----------------------------------
# The plans themselves are solved in assignment.py (rules, no SQL); these tables keep the inputs, the last
# plan and its meetings/teams, so a schedule or a team can be read, exported and changed later.


class ConsultationSession(MatchingModel, table=True):
    """A 相談会: a day at a venue, its time slots, the invited experts with how many meetings each takes,
    and the last plan solved for it (objective, pair scores, the unserved and why)."""

    __tablename__ = "consultation_sessions"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    title: str = Field(max_length=200)
    date: date
    venue_prefecture: str = Field(max_length=2, index=True)
    venue: str = Field(default="", max_length=200)
    slots: list[dict[str, str]] = _json(list)  # [{"start": "10:00", "end": "10:45"}]
    experts: list[dict[str, Any]] = _json(list)  # [{"expert_id", "max_meetings", "slots": [indices] | None}]
    max_meetings_per_sme: int = 1
    broker_id: str = Field(max_length=64, index=True)
    state: str = Field(default="open", max_length=20, index=True)  # open | published | cancelled
    plan: dict[str, Any] = _json(dict)  # the last solved plan (objective, pair_scores, unserved, reasons)
    entity_version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class SessionRegistration(MatchingModel, table=True):
    """An SME's registration for a 相談会 (on site): its topics, explicit and from the self-diagnosis."""

    __tablename__ = "session_registrations"
    __table_args__ = (UniqueConstraint("session_id", "sme_user_id", name="uq_session_registrations_user"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    session_id: str = Field(max_length=64, index=True)
    sme_user_id: str = Field(max_length=64, index=True)
    organization_id: str | None = Field(default=None, max_length=64, index=True)
    topics: list[str] = _json(list)
    explicit_topics: list[str] = _json(list)
    self_diagnosis: dict[str, str] = _json(dict)
    note: str = Field(default="", sa_type=Text)
    created_at: datetime = _timestamp()


class SessionMeeting(MatchingModel, table=True):
    """One meeting of the published plan; unique per (slot, expert) and (slot, registration), so nobody is
    in two places at once even if a bug slipped through the solver."""

    __tablename__ = "session_meetings"
    __table_args__ = (
        UniqueConstraint("session_id", "slot", "expert_id", name="uq_session_meetings_expert_slot"),
        UniqueConstraint("session_id", "slot", "registration_id", name="uq_session_meetings_registration_slot"),
    )

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    session_id: str = Field(max_length=64, index=True)
    slot: int
    expert_id: str = Field(max_length=64, index=True)
    registration_id: str = Field(max_length=64, index=True)
    score: float
    reason_ja: str = Field(default="", sa_type=Text)
    reason_en: str = Field(default="", sa_type=Text)


class HubProject(MatchingModel, table=True):
    """A マナビDX Quest 地域企業協働プログラム project: an SME's DX problem, the デジタルスキル標準 roles and
    levels it needs, where, and the team (ProjectMember rows) formed for it."""

    __tablename__ = "hub_projects"

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    title: str = Field(max_length=200)
    summary: str = Field(default="", sa_type=Text)
    organization_id: str | None = Field(default=None, max_length=64, index=True)  # the SME, if registered
    sme_name: str | None = Field(default=None, max_length=200)
    sme_name_public: bool = False  # the SME allows its name to be shown (and indexed for search)
    hub_organization_id: str | None = Field(default=None, max_length=64, index=True)
    created_by: str = Field(max_length=64, index=True)
    topics: list[str] = _json(list)
    requirements: list[dict[str, Any]] = _json(list)  # [{"role": "data_scientist", "level": 2}]
    prefecture: str = Field(max_length=2, index=True)
    remote_ok: bool = False
    start_on: date | None = None
    weeks: int = 8
    team_size: int = 5
    cohort: str = Field(default="", max_length=20, index=True)
    state: str = Field(default="open", max_length=20, index=True)  # open | team_proposed | team_confirmed | closed
    pins: list[str] = _json(list)  # learner ids the staff fixed into this team
    exclusions: list[str] = _json(list)  # learner ids the staff keep out of it
    entity_version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class ProjectInterest(MatchingModel, table=True):
    """A learner's stated interest in a project (it counts in the team objective)."""

    __tablename__ = "project_interests"

    project_id: str = Field(primary_key=True, max_length=64)
    learner_id: str = Field(primary_key=True, max_length=64, index=True)
    user_id: str = Field(max_length=64)
    note: str = Field(default="", sa_type=Text)
    created_at: datetime = _timestamp()


class ProjectMember(MatchingModel, table=True):
    """A place in a project's team: a learner (``member``) or a 登録セキスペ mentor (``mentor``), proposed
    by the solver and then confirmed, with the reason they are there."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "learner_id", name="uq_project_members_person"),)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), primary_key=True, max_length=64)
    project_id: str = Field(max_length=64, index=True)
    learner_id: str = Field(max_length=64, index=True)
    role: str = Field(default="member", max_length=10)
    state: str = Field(default="proposed", max_length=20, index=True)  # proposed | confirmed
    fit: int = 0
    reason_ja: str = Field(default="", sa_type=Text)
    reason_en: str = Field(default="", sa_type=Text)
    created_at: datetime = _timestamp()

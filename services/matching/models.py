"""Tables of the matching service (its own database; nobody else reads them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Text
from sqlmodel import Field

from tsunagu.db import service_base, utcnow
from tsunagu.outbox import OutboxFields, ProcessedEventFields

MatchingModel = service_base("matching")


def _json(default_factory):  # noqa: ANN001, ANN202
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=False))


def _timestamp(**kwargs: Any):  # noqa: ANN202
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kwargs)


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
    last_confirmed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    fee_min_yen: int | None = None
    fee_max_yen: int | None = None
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

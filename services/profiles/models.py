"""Tables of the profiles service (its own database; no other service reads them).

List and map fields are JSON columns (SQLite and PostgreSQL alike). The ``*_tags`` columns repeat a few
of them as ``|a|b|`` text so that a broker's list filter can narrow rows in SQL with a portable LIKE;
what the caller may see is still checked on the row itself (see service.list_experts).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field

from tsunagu.db import UtcDateTime, service_base, utcnow
from tsunagu.outbox import OutboxFields

ProfilesModel = service_base("profiles")


def new_id() -> str:
    return str(uuid.uuid4())


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _json(default_factory: Any = None, *, nullable: bool = False) -> Any:
    if default_factory is None:
        return Field(default=None, sa_column=Column(JSON, nullable=True))
    return Field(default_factory=default_factory, sa_column=Column(JSON, nullable=nullable))


def _timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=UtcDateTime, **kwargs)


def tags(values: list[str]) -> str:
    """['13', '14'] -> '|13|14|' (searchable with LIKE '%|13|%')."""
    return "|" + "|".join(values) + "|" if values else ""


class OutboxRecord(OutboxFields, ProfilesModel, table=True):
    __tablename__ = "outbox"


class Expert(ProfilesModel, table=True):
    """One entry of the active list: a 登録セキスペ or a DX talent."""

    __tablename__ = "experts"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    kind: str = Field(max_length=20, index=True)
    owner_user_id: str | None = Field(default=None, max_length=64, unique=True)
    external_id: str | None = Field(default=None, max_length=100, unique=True)
    registration_number: str | None = Field(default=None, max_length=6, unique=True)
    name: str = Field(max_length=100)
    name_kana: str | None = Field(default=None, max_length=100)
    registration_date: date | None = None
    renewal_deadline: date | None = None
    training: dict[str, list[str]] | None = _json()  # {"online": [iso dates], "practical": [...]}
    affiliation: str | None = Field(default=None, max_length=200)
    contact_email: str | None = Field(default=None, max_length=254)
    contact_phone: str | None = Field(default=None, max_length=30)
    prefectures: list[str] = _json(list)
    onsite: bool = False
    remote: bool = False
    strengths: list[dict[str, Any]] = _json(list)  # [{"topic": ..., "depth": 1..3}]
    skills: list[str] = _json(list)
    industries: list[str] = _json(list)
    services: list[str] = _json(list)
    qualifications: list[str] = _json(list)
    fee_min_yen: int | None = None
    fee_max_yen: int | None = None
    fee_unit: str | None = Field(default=None, max_length=20)
    capacity: int = 1
    bio: str | None = Field(default=None, sa_type=Text)
    dss_roles: list[dict[str, Any]] = _json(list)  # [{"role": ..., "level": 1..4}]
    programme: dict[str, Any] | None = _json()
    availability: str | None = Field(default=None, max_length=20)
    visibility: dict[str, str] = _json(dict)  # only the settings that differ from nothing: merged with defaults
    # Organisations the expert will not advise (private: only the expert, admins and the scorer see them)
    # and the one that employs them. Outside the profile document, so the CSV import leaves them alone.
    conflicted_organization_ids: list[str] = _json(list)
    employer_organization_id: str | None = Field(default=None, max_length=64)

    # The living list: whether the entry is active and why not.
    active: bool = Field(default=True, index=True)
    status_reason: str | None = Field(default=None, max_length=40, index=True)
    status_changed_at: datetime = _timestamp()
    last_confirmed_at: datetime | None = Field(default=None, sa_type=UtcDateTime, index=True)
    reminders: dict[str, str] = _json(dict)  # reminder code -> the due date it was sent for

    # Verification (issue 9): an entry an expert account creates is "pending" until an admin checks it
    # against the official register ("verified") or refuses it ("rejected", with the reason). Entries an
    # admin creates or imports are verified by definition. Only verified entries are public, searchable
    # and ranked (events.expert_envelopes sends nothing about the others to search or matching).
    verification: str = Field(default="verified", max_length=20, index=True)
    verification_reason: str | None = Field(default=None, max_length=1000)
    verification_decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    verification_decided_by: str | None = Field(default=None, max_length=64)

    content_hash: str = Field(max_length=64)  # of the profile fields: an unchanged re-import is skipped
    prefecture_tags: str = Field(default="", sa_type=Text)
    topic_tags: str = Field(default="", sa_type=Text)
    skill_tags: str = Field(default="", sa_type=Text)
    service_tags: str = Field(default="", sa_type=Text)
    version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class Organization(ProfilesModel, table=True):
    """An SME (中小企業) that asks for help; its members are the users who act for it."""

    __tablename__ = "organizations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    prefecture: str = Field(max_length=2, index=True)
    industry: str | None = Field(default=None, max_length=100)
    employees: int | None = None
    digitalization_stage: int | None = None
    security_action: str = Field(default="none", max_length=20)
    scs_target: str = Field(default="none", max_length=20)
    created_by: str = Field(max_length=64)
    version: int = 1
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()


class OrganizationMember(ProfilesModel, table=True):
    __tablename__ = "organization_members"

    organization_id: str = Field(foreign_key="organizations.id", primary_key=True, max_length=64)
    user_id: str = Field(primary_key=True, max_length=64, index=True)
    added_at: datetime = _timestamp()


class RegistrationClaim(ProfilesModel, table=True):
    """A contested claim: an expert account asked for a registration number that an entry already holds
    (imported without an account, or held by another account). It is neither accepted nor refused by the
    system: an admin decides. Accepting hands the entry to the claimant; the profile they sent is kept so
    the admin can compare it with the register."""

    __tablename__ = "registration_claims"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    registration_number: str = Field(max_length=6, index=True)
    claimant_user_id: str = Field(max_length=64, index=True)
    expert_id: str = Field(foreign_key="experts.id", max_length=64, index=True)  # the entry that holds the number
    held_by_user_id: str | None = Field(default=None, max_length=64)  # its owner when the claim was filed
    submitted: dict[str, Any] = _json(dict)  # the profile the claimant sent
    status: str = Field(default="open", max_length=20, index=True)  # open | accepted | rejected
    decision_reason: str | None = Field(default=None, max_length=1000)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = _timestamp()


class CorrectionRequest(ProfilesModel, table=True):
    """An expert asks the operator to correct regulated data (registration number, registration date,
    renewal deadline, training record), which only an admin or the import writes."""

    __tablename__ = "correction_requests"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    expert_id: str = Field(foreign_key="experts.id", max_length=64, index=True)
    requested_by: str = Field(max_length=64)
    field: str = Field(max_length=40)
    proposed_value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    reason: str = Field(sa_type=Text)
    status: str = Field(default="open", max_length=20, index=True)  # open | accepted | rejected
    decision_reason: str | None = Field(default=None, max_length=1000)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = _timestamp()


class OrganizationInvitation(ProfilesModel, table=True):
    """Being added to an organisation needs the user's consent: a member (or an admin) invites, the user
    accepts or declines. Until they accept they are not a member and read nothing of the organisation but
    its name on the invitation."""

    __tablename__ = "organization_invitations"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    organization_id: str = Field(foreign_key="organizations.id", max_length=64, index=True)
    user_id: str = Field(max_length=64, index=True)
    invited_by: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=20, index=True)  # pending | accepted | declined | cancelled
    created_at: datetime = _timestamp()
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

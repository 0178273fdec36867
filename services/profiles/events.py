"""The events the profiles service writes to its outbox (in the transaction of the change itself).

Every change of an expert writes both ``profiles.expert.upserted`` (matching features, for the scorer)
and ``profiles.expert.published`` (the anonymous view, for the search index), plus a status event with
the reason when the entry becomes inactive or active again. All events of one change carry the same
``entity_version``, which grows by one per change.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from sqlmodel import Session

from tsunagu.contracts import ExpertStatusChangedV1, OrganizationV1
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import add_event

from services.profiles.models import Expert, Organization, OutboxRecord, aware
from services.profiles.visibility import features_event, public_event

SOURCE = "profiles"


@dataclass(frozen=True)
class Finding:
    """A reason in words: why an entry is (in)active, or what a reminder is about."""

    code: str
    ja: str
    en: str
    due: str | None = None  # ISO date a reminder is about (a reminder goes out once per due date)


def envelope(subject: str, subject_id: str, version: int, data: BaseModel) -> EventEnvelope:
    return EventEnvelope.for_change(subject, SOURCE, subject_id, version, data)


def _status(expert: Expert, finding: Finding) -> ExpertStatusChangedV1:
    return ExpertStatusChangedV1(expert_id=expert.id, reason_code=finding.code, reason_ja=finding.ja, reason_en=finding.en)


def expert_envelopes(expert: Expert, status: tuple[str, Finding] | None = None) -> list[EventEnvelope]:
    """upserted + published (+ the status event) for the expert's current state and version."""
    envelopes = [
        envelope(Subjects.EXPERT_UPSERTED, expert.id, expert.version, features_event(expert)),
        envelope(Subjects.EXPERT_PUBLISHED, expert.id, expert.version, public_event(expert, aware(expert.updated_at))),  # type: ignore[arg-type]
    ]
    if status is not None:
        subject, finding = status
        envelopes.append(envelope(subject, expert.id, expert.version, _status(expert, finding)))
    return envelopes


def add_expert_events(session: Session, expert: Expert, status: tuple[str, Finding] | None = None) -> None:
    for event in expert_envelopes(expert, status):
        add_event(session, OutboxRecord, event)


def add_reminder_event(session: Session, expert: Expert, finding: Finding) -> None:
    """A reminder changes nothing the consumers hold, so it keeps the current entity version."""
    add_event(
        session,
        OutboxRecord,
        envelope(Subjects.EXPERT_CONFIRMATION_DUE, expert.id, expert.version, _status(expert, finding)),
    )


def add_organization_event(session: Session, organization: Organization, member_user_ids: list[str]) -> None:
    data = OrganizationV1(
        organization_id=organization.id,
        name=organization.name,
        prefecture=organization.prefecture,
        industry=organization.industry,
        employees=organization.employees,
        digitalization_stage=organization.digitalization_stage,
        security_action=organization.security_action,  # type: ignore[arg-type]
        scs_target=organization.scs_target,  # type: ignore[arg-type]
        member_user_ids=sorted(member_user_ids),
    )
    add_event(session, OutboxRecord, envelope(Subjects.ORGANIZATION_UPSERTED, organization.id, organization.version, data))

"""The events the profiles service writes to its outbox (in the transaction of the change itself).

Every change of an expert writes both ``profiles.expert.upserted`` (matching features, for the scorer)
and ``profiles.expert.published`` (the anonymous view, for the search index), plus a status event with
the reason when the entry becomes inactive or active again. All events of one change carry the same
``entity_version``, which grows by one per change (``tsunagu.outbox.record_change``).

An entry that is not verified (pending, or rejected) sends nothing to search or matching: neither the public
view nor the features leave the service until an admin has checked the entry against the register, so it
cannot be found or ranked. Its status events still go out (they only tell the expert).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from services.profiles.models import Expert, Organization, OutboxRecord, aware
from services.profiles.reasons import Finding
from services.profiles.visibility import features_event, public_event
from tsunagu.contracts import (
    CorrectionDecidedV1,
    ExpertStatusChangedV1,
    ExpertVerificationV1,
    OrganizationInvitationV1,
    OrganizationV1,
)
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import add_event, record_change

SOURCE = "profiles"
VERIFIED = "verified"

# A status event the freshness rules call for: (subject, reason).
StatusChange = tuple[str, Finding]


def envelope(subject: str, subject_id: str, version: int, data: BaseModel) -> EventEnvelope:
    return EventEnvelope.for_change(subject, SOURCE, subject_id, version, data)


def _status(expert: Expert, finding: Finding) -> ExpertStatusChangedV1:
    return ExpertStatusChangedV1(
        expert_id=expert.id,
        reason_code=finding.code,
        reason_ja=finding.ja,
        reason_en=finding.en,
        owner_user_id=expert.owner_user_id,  # so the reminder reaches the expert without a call back
        expert_name=expert.name,
    )


def expert_envelopes(expert: Any, status: StatusChange | None = None) -> list[EventEnvelope]:
    """upserted + published (+ the status event) for the expert's current state and version; only the
    status event while the entry is not verified."""
    envelopes = []
    if is_listed(expert):
        envelopes = [
            envelope(Subjects.EXPERT_UPSERTED, expert.id, expert.version, features_event(expert)),
            envelope(
                Subjects.EXPERT_PUBLISHED, expert.id, expert.version, public_event(expert, aware(expert.updated_at))
            ),  # type: ignore[arg-type]
        ]
    if status is not None:
        subject, finding = status
        envelopes.append(envelope(subject, expert.id, expert.version, _status(expert, finding)))
    return envelopes


def is_listed(expert: Any) -> bool:
    """Whether the entry may be public, searched and ranked: an admin verified it (or created/imported it)."""
    return getattr(expert, "verification", VERIFIED) == VERIFIED


def add_expert_events(session: Session, expert: Expert, status: StatusChange | None = None) -> None:
    """The events of a new entry (its first version)."""
    for event in expert_envelopes(expert, status):
        add_event(session, OutboxRecord, event)


def expert_changed(session: Session, expert: Expert, status: StatusChange | None = None, **changes: Any) -> int:
    """A new version of the entry and its events, in the caller's transaction."""
    return record_change(
        session,
        OutboxRecord,
        expert,
        events=lambda changed: expert_envelopes(changed, status),
        version_field="version",
        **changes,
    )


def add_reminder_event(session: Session, expert: Expert, finding: Finding) -> None:
    """A reminder changes nothing the consumers hold, so it keeps the current entity version."""
    add_event(
        session,
        OutboxRecord,
        envelope(Subjects.EXPERT_CONFIRMATION_DUE, expert.id, expert.version, _status(expert, finding)),
    )


def _organization_envelope(organization: Organization, member_user_ids: list[str]) -> EventEnvelope:
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
    return envelope(Subjects.ORGANIZATION_UPSERTED, organization.id, organization.version, data)


def add_organization_event(session: Session, organization: Organization, member_user_ids: list[str]) -> None:
    """The event of a new organisation (its first version)."""
    add_event(session, OutboxRecord, _organization_envelope(organization, member_user_ids))


def organization_changed(
    session: Session, organization: Organization, member_user_ids: list[str], **changes: Any
) -> int:
    """A new version of the organisation and its event, in the caller's transaction."""
    return record_change(
        session,
        OutboxRecord,
        organization,
        events=lambda changed: [_organization_envelope(changed, member_user_ids)],
        version_field="version",
        **changes,
    )


# --- trust (issue 9) -------------------------------------------------------------------------------


def add_verification_event(
    session: Session,
    expert: Expert,
    *,
    user_id: str,
    verified: bool,
    reason: str | None = None,
    claim_id: str | None = None,
    registration_number: str | None = None,
) -> None:
    """The claimant is told of the admin's decision (verified or rejected, with the reason)."""
    add_event(
        session,
        OutboxRecord,
        verification_envelope(
            expert,
            user_id=user_id,
            verified=verified,
            reason=reason,
            claim_id=claim_id,
            registration_number=registration_number,
        ),
    )


def verification_envelope(
    expert: Any,
    *,
    user_id: str,
    verified: bool,
    reason: str | None = None,
    claim_id: str | None = None,
    registration_number: str | None = None,
) -> EventEnvelope:
    data = ExpertVerificationV1(
        expert_id=expert.id,
        user_id=user_id,
        expert_name=expert.name,
        registration_number=registration_number or expert.registration_number,
        claim_id=claim_id,
        reason=reason,
    )
    subject = Subjects.EXPERT_VERIFIED if verified else Subjects.EXPERT_REJECTED
    return envelope(subject, expert.id, expert.version, data)


def add_correction_event(session: Session, expert: Expert, correction: Any) -> None:
    data = CorrectionDecidedV1(
        correction_id=correction.id,
        expert_id=expert.id,
        user_id=correction.requested_by,
        field=correction.field,
        decision=correction.status,
        reason=correction.decision_reason,
    )
    add_event(session, OutboxRecord, envelope(Subjects.EXPERT_CORRECTION_DECIDED, expert.id, expert.version, data))


def add_invitation_event(session: Session, organization: Organization, invitation: Any) -> None:
    data = OrganizationInvitationV1(
        invitation_id=invitation.id,
        organization_id=organization.id,
        organization_name=organization.name,
        user_id=invitation.user_id,
        invited_by=invitation.invited_by,
    )
    add_event(
        session,
        OutboxRecord,
        envelope(Subjects.ORGANIZATION_INVITED, organization.id, organization.version, data),
    )

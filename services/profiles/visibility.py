"""Who sees which field of an expert profile. Every read path goes through here: API responses (by the
caller's role and relation to the entry), the CSV export (admins only) and the events (the published
event is the anonymous view; the matching features carry no contact data).

Rules, as implemented:
- Mandatory registration data (kind, registration number, name, registration date, training dates) and
  whether the entry is active: everyone.
- Every other field has a level the expert chooses: ``public`` (everyone, and the search index),
  ``brokers`` (支援機関 staff: roles broker and hub), ``private`` (the expert and admins only).
- The expert who owns the entry, admins and the system (role service) see everything, including the
  visibility settings themselves.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import IntEnum
from typing import Any

from services.profiles.catalogue import DEFAULT_VISIBILITY, VISIBILITY_FIELDS
from services.profiles.models import Expert, aware
from services.profiles.reasons import REASONS
from tsunagu.auth import Principal, Role
from tsunagu.contracts import ExpertFeaturesV1, ExpertPublicV1
from tsunagu.reference import topics


class Audience(IntEnum):
    PUBLIC = 0
    BROKERS = 1
    OWNER = 2  # the expert itself, admins and the system


LEVEL_AUDIENCE = {"public": Audience.PUBLIC, "brokers": Audience.BROKERS, "private": Audience.OWNER}


def effective_visibility(expert: Expert) -> dict[str, str]:
    return DEFAULT_VISIBILITY | (expert.visibility or {})


def audience_of(principal: Principal, expert: Expert) -> Audience:
    if principal.is_privileged:
        return Audience.OWNER
    if principal.role == Role.EXPERT and expert.owner_user_id is not None and expert.owner_user_id == principal.sub:
        return Audience.OWNER
    if principal.is_regional_staff:
        return Audience.BROKERS
    return Audience.PUBLIC


def visible_keys(expert: Expert, audience: Audience) -> set[str]:
    """The visibility settings (keys of VISIBILITY_FIELDS) this audience may read."""
    return {key for key, level in effective_visibility(expert).items() if LEVEL_AUDIENCE[level] <= audience}


def _field_values(expert: Expert) -> dict[str, Any]:
    return {
        "name_kana": expert.name_kana,
        "renewal_deadline": expert.renewal_deadline,
        "affiliation": expert.affiliation,
        "contact_email": expert.contact_email,
        "contact_phone": expert.contact_phone,
        "prefectures": list(expert.prefectures),
        "onsite": expert.onsite,
        "remote": expert.remote,
        "strengths": [dict(item) for item in expert.strengths],
        "skills": list(expert.skills),
        "industries": list(expert.industries),
        "services": list(expert.services),
        "qualifications": list(expert.qualifications),
        "fee_min_yen": expert.fee_min_yen,
        "fee_max_yen": expert.fee_max_yen,
        "fee_unit": expert.fee_unit,
        "capacity": expert.capacity,
        "bio": expert.bio,
        "dss_roles": [dict(item) for item in expert.dss_roles],
        "programme": dict(expert.programme) if expert.programme else None,
        "availability": expert.availability,
    }


def confirmation_due_on(expert: Expert, max_age_days: int) -> date | None:
    confirmed = aware(expert.last_confirmed_at)
    return (confirmed + timedelta(days=max_age_days)).date() if confirmed else None


def expert_view(expert: Expert, principal: Principal, *, max_age_days: int) -> dict[str, Any]:
    """The entry as this caller may see it (the body of an ExpertView). Hidden fields are left out (not
    null)."""
    audience = audience_of(principal, expert)
    view: dict[str, Any] = {"id": expert.id, "kind": expert.kind, "name": expert.name}
    if expert.kind == "sekisupe":
        view |= {
            "registration_number": expert.registration_number,
            "registration_date": expert.registration_date,
            "training": expert.training,
        }
    values = _field_values(expert)
    for key in sorted(visible_keys(expert, audience)):
        for field in VISIBILITY_FIELDS[key]:
            view[field] = values[field]
    view["active"] = expert.active
    if audience >= Audience.BROKERS:
        reason = REASONS.get(expert.status_reason or "")
        view["status"] = {
            "reason_code": expert.status_reason,
            "reason_ja": reason[0] if reason else None,
            "reason_en": reason[1] if reason else None,
            "changed_at": aware(expert.status_changed_at),
            "last_confirmed_at": aware(expert.last_confirmed_at),
            "confirmation_due_on": confirmation_due_on(expert, max_age_days),
        }
    if audience == Audience.OWNER:
        view |= {
            "owner_user_id": expert.owner_user_id,
            "external_id": expert.external_id,
            "visibility": effective_visibility(expert),
            "conflicted_organization_ids": list(expert.conflicted_organization_ids or []),
            "employer_organization_id": expert.employer_organization_id,
            "created_at": aware(expert.created_at),
        }
    view["verification"] = expert.verification
    if audience == Audience.OWNER:
        view["verification_reason"] = expert.verification_reason
    view |= {"version": expert.version, "updated_at": aware(expert.updated_at)}
    return view


def may_read(principal: Principal, expert: Expert) -> bool:
    """A verified entry is on the list; a pending or rejected one exists only for its owner and admins."""
    return expert.verification == "verified" or audience_of(principal, expert) == Audience.OWNER


def features_event(expert: Expert) -> ExpertFeaturesV1:
    """What the scorer needs, whatever the expert made public; contact data never leaves the service."""
    return ExpertFeaturesV1(
        expert_id=expert.id,
        kind=expert.kind,  # type: ignore[arg-type]
        display_name=expert.name,
        active=expert.active,
        prefectures=list(expert.prefectures),
        onsite=expert.onsite,
        remote=expert.remote,
        topics={item["topic"]: int(item["depth"]) for item in expert.strengths},
        skills=list(expert.skills),
        industries=list(expert.industries),
        services=list(expert.services),
        dss_roles={item["role"]: int(item["level"]) for item in expert.dss_roles},
        capacity=expert.capacity,
        registration_expires_on=expert.renewal_deadline,
        last_confirmed_at=aware(expert.last_confirmed_at),
        fee_min_yen=expert.fee_min_yen,
        fee_max_yen=expert.fee_max_yen,
        owner_user_id=expert.owner_user_id,
        conflicted_organization_ids=list(expert.conflicted_organization_ids or []),
        employer_organization_id=expert.employer_organization_id,
        public_fields=sorted(visible_keys(expert, Audience.PUBLIC)),
        broker_fields=sorted(visible_keys(expert, Audience.BROKERS)),
        # マナビDX Quest: only learners who finished the case study (2層) may join hub project teams.
        case_study_completed=bool((expert.programme or {}).get("case_study_completed")),
    )


def public_event(expert: Expert, updated_at: datetime) -> ExpertPublicV1:
    """The anonymous view, for the search index: public fields plus the mandatory ones."""
    keys = visible_keys(expert, Audience.PUBLIC)
    values = _field_values(expert)

    def shown(key: str, value: Any) -> Any:
        return value if key in keys else None

    topic_ids = [item["topic"] for item in expert.strengths]
    labels = topics()
    return ExpertPublicV1(
        id=expert.id,
        kind=expert.kind,  # type: ignore[arg-type]
        name=expert.name,
        name_kana=shown("name_kana", expert.name_kana),
        registration_number=expert.registration_number,
        affiliation=shown("affiliation", expert.affiliation),
        bio=shown("bio", expert.bio),
        prefectures=shown("prefectures", values["prefectures"]),
        onsite=shown("prefectures", expert.onsite),
        remote=shown("prefectures", expert.remote),
        topics=shown("strengths", topic_ids),
        topic_labels=shown("strengths", [labels[topic].label_ja for topic in topic_ids if topic in labels]),
        skills=shown("skills", values["skills"]),
        industries=shown("industries", values["industries"]),
        services=shown("services", values["services"]),
        dss_roles=shown("dss_roles", [item["role"] for item in expert.dss_roles]),
        active=expert.active,
        updated_at=updated_at,
    )

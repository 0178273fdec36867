"""What the profiles service does: create, change, confirm and list entries of the active list, and SME
organisations. Who may do what on which object is checked here, whatever path (API, import, job) the
change comes from. Each function works in the caller's session: a change and its outbox events are
added together, and the caller (the route) commits them in one transaction.

Trust (issue 9): an entry an expert account creates is pending until an admin verifies it against the
official register (only then is it public, searchable and ranked); a registration number another entry
holds becomes a contested claim for the admin; regulated data (registration number and date, renewal
deadline, training record) is written only by admins and the import, the expert asks for a correction;
joining an organisation takes the invited user's consent.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.profiles import repository
from services.profiles.events import (
    VERIFIED,
    StatusChange,
    add_correction_event,
    add_expert_events,
    add_invitation_event,
    add_organization_event,
    add_verification_event,
    expert_changed,
)
from services.profiles.events import organization_changed as record_organization_change
from services.profiles.freshness import apply_status, evaluate, status_change
from services.profiles.models import (
    CorrectionRequest,
    Expert,
    Organization,
    OrganizationInvitation,
    RegistrationClaim,
    aware,
)
from services.profiles.profile import (
    apply_profile,
    content_hash,
    normalized_visibility,
    profile_document,
    profile_of,
    validate_profile,
)
from services.profiles.reasons import REASONS
from services.profiles.repository import ExpertFilter
from services.profiles.schemas import (
    REGULATED_FIELDS,
    ClaimRead,
    CorrectionCreate,
    CorrectionRead,
    ExpertCreate,
    ExpertPatch,
    ExpertView,
    InvitationRead,
    OrganizationCreate,
    OrganizationPatch,
    OrganizationRead,
    PublishedExpertRead,
    VisibilityUpdate,
)
from services.profiles.settings import ProfilesSettings
from services.profiles.visibility import Audience, audience_of, expert_view, may_read, public_event, visible_keys
from tsunagu.auth import Principal, Role, require_authenticated
from tsunagu.db import utcnow
from tsunagu.deps import RuntimeDep
from tsunagu.errors import ApiError, FieldError, forbidden, invalid_field, not_found
from tsunagu.pagination import Page
from tsunagu.reference import prefectures
from tsunagu.types import normalize_registration_number


def get_settings(runtime: RuntimeDep) -> ProfilesSettings:
    return runtime.settings  # type: ignore[return-value]


ProfilesSettingsDep = Annotated[ProfilesSettings, Depends(get_settings)]


def duplicate(field: str, value: str) -> ApiError:
    messages = {
        "registration_number": (
            f"登録番号 {value} は既に登録されています",
            f"Registration number {value} is already listed",
        ),
        "external_id": (f"外部ID {value} は既に使われています", f"External id {value} is already used"),
        "owner_user_id": ("このユーザーのプロフィールは既にあります", "This user already has a profile"),
    }
    ja, en = messages[field]
    return ApiError(409, "duplicate", ja, en, [FieldError(field, ja, en)])


def stale_cutoff(days: int) -> datetime:
    return utcnow() - timedelta(days=days)


# --- experts -------------------------------------------------------------------------------------


def _view(expert: Expert, principal: Principal, settings: ProfilesSettings, **extra: Any) -> ExpertView:
    view = expert_view(expert, principal, max_age_days=settings.confirmation_max_age_days)
    return ExpertView.model_validate(view | extra)


def _check_unique(session: Session, expert: Expert, document: dict[str, Any], owner: str | None) -> None:
    lookups = (
        ("registration_number", document.get("registration_number"), repository.expert_by_registration_number),
        ("external_id", document.get("external_id"), repository.expert_by_external_id),
        ("owner_user_id", owner, repository.expert_by_owner),
    )
    for field, value, lookup in lookups:
        if value is not None:
            other = lookup(session, value)
            if other is not None and other.id != expert.id:
                raise duplicate(field, value)


def _status(
    expert: Expert, settings: ProfilesSettings, now: datetime, *, confirmed: bool = False
) -> StatusChange | None:
    """Status by the freshness rules: the common step of every change."""
    change = status_change(expert, evaluate(expert, now.date(), settings), confirmed=confirmed)
    apply_status(expert, change, now)
    return change


def _flush(session: Session) -> None:
    try:
        session.flush()  # unique constraints fire here, inside the transaction
    except IntegrityError as error:
        raise ApiError(409, "conflict", "他の変更と競合しました", "Conflicting change; please retry") from error


def _changed(session: Session, expert: Expert, settings: ProfilesSettings, *, confirmed: bool = False) -> None:
    """Status, a new version and the events of a changed entry."""
    change = _status(expert, settings, utcnow(), confirmed=confirmed)
    expert_changed(session, expert, change)
    _flush(session)


def create_expert(session: Session, settings: ProfilesSettings, principal: Principal, body: ExpertCreate) -> ExpertView:
    """An expert creates its own entry (one per user); admins and the system create any."""
    require_authenticated(principal)
    if principal.is_privileged:
        owner = body.owner_user_id
    elif principal.role == Role.EXPERT:
        if body.owner_user_id not in (None, principal.sub):
            raise forbidden("他のユーザーのプロフィールは作成できません", "You may only create your own profile")
        owner = principal.sub
    else:
        raise forbidden("プロフィールを作成できるのは専門家本人と管理者です", "Only experts and admins create profiles")
    document = profile_document(body)
    now = utcnow()
    expert = Expert(
        kind=body.kind,
        name=body.name,
        owner_user_id=owner,
        content_hash="",
        last_confirmed_at=now,
        conflicted_organization_ids=body.conflicted_organization_ids,
        employer_organization_id=body.employer_organization_id,
        # An admin (or the system) vouches for what it enters; an expert's own claim waits for the register check.
        verification=VERIFIED if principal.is_privileged else PENDING,
    )
    if not principal.is_privileged:
        _check_unique(session, expert, {"external_id": document.get("external_id")}, owner)
        _claim_if_held(session, principal, document)
    _check_unique(session, expert, document, owner)
    apply_profile(expert, document, content_hash(document))
    expert.created_at = expert.status_changed_at = expert.updated_at = now
    change = _status(expert, settings, now)
    session.add(expert)
    _flush(session)  # before any event
    add_expert_events(session, expert, change)
    return _view(expert, principal, settings)


PENDING, REJECTED = "pending", "rejected"


class ClaimFiled(ApiError):
    """A 409 that leaves something written: the contested claim the admin will decide (the route commits
    the claim, then answers with this error)."""


def _claim_if_held(session: Session, principal: Principal, document: dict[str, Any]) -> None:
    """An expert account asks for a registration number an entry already holds: not silently refused nor
    accepted, but filed as a contested claim for an admin (once per account and number)."""
    number = document.get("registration_number")
    held = repository.expert_by_registration_number(session, number) if number else None
    if held is None:
        return
    claim = repository.open_claim(session, principal.sub, number)
    if claim is None:
        claim = RegistrationClaim(
            registration_number=number,
            claimant_user_id=principal.sub,
            expert_id=held.id,
            held_by_user_id=held.owner_user_id,
            submitted=document,
        )
        session.add(claim)
        session.flush()
    ja, en = (
        f"登録番号 {number} は既に登録されています。管理者が登録簿と照合して判断します（申立て {claim.id}）",
        f"Registration number {number} is already listed. Your claim was sent to an admin, who will check it "
        f"against the official register (claim {claim.id})",
    )
    raise ClaimFiled(409, "registration_number_claimed", ja, en, [FieldError("registration_number", ja, en)])


def _owned(session: Session, principal: Principal, expert_id: str) -> Expert:
    """The entry, locked for change, if the caller is its owner or privileged."""
    require_authenticated(principal)
    expert = repository.get_expert(session, expert_id, for_update=True)
    if expert is None:
        raise not_found("専門家", "Expert")
    if audience_of(principal, expert) != Audience.OWNER:
        raise forbidden("本人と管理者だけが変更できます", "Only the expert and admins may change this entry")
    return expert


def get_expert(session: Session, settings: ProfilesSettings, principal: Principal, expert_id: str) -> ExpertView:
    expert = repository.get_expert(session, expert_id)
    if expert is None or not may_read(principal, expert):
        raise not_found("専門家", "Expert")
    return _view(expert, principal, settings)


def my_expert(session: Session, settings: ProfilesSettings, principal: Principal) -> ExpertView:
    require_authenticated(principal)
    expert = repository.expert_by_owner(session, principal.sub)
    if expert is None:
        raise not_found("あなたのプロフィール", "Your profile")
    return _view(expert, principal, settings)


def update_expert(
    session: Session, settings: ProfilesSettings, principal: Principal, expert_id: str, patch: ExpertPatch
) -> ExpertView:
    """Partial update by the expert or an admin; the merged whole is validated as ExpertIn."""
    expert = _owned(session, principal, expert_id)
    changes = patch.model_dump(mode="json", exclude_unset=True)
    if "kind" in changes and changes.pop("kind") != expert.kind:
        raise invalid_field("kind", "種別は変更できません", "The kind of an entry cannot change")
    if not principal.is_privileged:
        if "owner_user_id" in changes:
            raise forbidden("所有者を変更できるのは管理者です", "Only admins change the owner")
        _refuse_regulated(expert, changes)
    owner = changes.pop("owner_user_id", expert.owner_user_id)
    conflicts = changes.pop("conflicted_organization_ids", None)
    if conflicts is None:
        conflicts = list(expert.conflicted_organization_ids or [])
    employer = changes.pop("employer_organization_id", expert.employer_organization_id)
    merged = profile_of(expert) | changes
    if changes.get("visibility") is not None:
        merged["visibility"] = (expert.visibility or {}) | changes["visibility"]
    document = profile_document(validate_profile(merged))
    digest = content_hash(document)
    same_relations = conflicts == list(expert.conflicted_organization_ids or []) and employer == (
        expert.employer_organization_id
    )
    if digest == expert.content_hash and owner == expert.owner_user_id and same_relations:
        return _view(expert, principal, settings)  # nothing changed: no new version, no event
    _check_unique(session, expert, document, owner)
    apply_profile(expert, document, digest)
    expert.owner_user_id = owner
    expert.conflicted_organization_ids = conflicts
    expert.employer_organization_id = employer
    _changed(session, expert, settings)
    return _view(expert, principal, settings)


REGULATED_LABELS = {
    "registration_number": ("登録番号", "registration number"),
    "registration_date": ("登録年月日", "registration date"),
    "renewal_deadline": ("更新期限", "renewal deadline"),
    "training": ("講習の受講記録", "training record"),
}


def _refuse_regulated(expert: Expert, changes: dict[str, Any]) -> None:
    """Regulated data is the operator's: an expert's change of it is refused naming the field (sending the
    stored value again is no change)."""
    stored = profile_of(expert)
    for field in REGULATED_FIELDS:
        value = changes.get(field)
        if field == "registration_number" and isinstance(value, str):
            with suppress(ValueError):  # not even a number: a change, refused as such
                value = normalize_registration_number(value)
        if field in changes and value != stored[field]:
            ja, en = REGULATED_LABELS[field]
            raise ApiError(
                422,
                "regulated_field",
                f"{ja}は運営者だけが変更できます。訂正を依頼してください",
                f"Only the operator changes the {en}; file a correction request",
                [
                    FieldError(
                        field,
                        f"{ja}の訂正は POST /experts/{expert.id}/corrections で依頼してください",
                        f"Ask for a correction of the {en} with POST /experts/{expert.id}/corrections",
                    )
                ],
            )


def set_visibility(
    session: Session, settings: ProfilesSettings, principal: Principal, expert_id: str, body: VisibilityUpdate
) -> ExpertView:
    """Replace all visibility settings (a field left out returns to its default)."""
    expert = _owned(session, principal, expert_id)
    document = profile_of(expert) | {"visibility": normalized_visibility(body.visibility)}
    digest = content_hash(document)
    if digest != expert.content_hash:
        apply_profile(expert, document, digest)
        _changed(session, expert, settings)
    return _view(expert, principal, settings)


def confirm_active(session: Session, settings: ProfilesSettings, principal: Principal, expert_id: str) -> ExpertView:
    """「活動中」の確認: one action; reactivates the entry if nothing else keeps it inactive."""
    expert = _owned(session, principal, expert_id)
    expert.last_confirmed_at = utcnow()
    expert.reminders = {key: value for key, value in (expert.reminders or {}).items() if key != "confirmation_due"}
    _changed(session, expert, settings, confirmed=True)
    if expert.active:
        return _view(expert, principal, settings)
    ja, en = REASONS[expert.status_reason or ""]
    return _view(
        expert,
        principal,
        settings,
        message_ja=f"確認を記録しましたが、次の理由で掲載は停止中です: {ja}",
        message_en=f"Confirmation recorded, but the entry stays inactive: {en}",
    )


def list_experts(
    session: Session,
    settings: ProfilesSettings,
    principal: Principal,
    where: ExpertFilter,
    *,
    limit: int,
    offset: int,
) -> Page[ExpertView]:
    """For brokers (支援機関) and admins. A filter on a field only matches entries whose field the
    caller may see, so a filter cannot reveal what an expert keeps private."""
    require_authenticated(principal)
    if not (principal.is_privileged or principal.is_regional_staff):
        raise forbidden("一覧を見られるのは支援機関と管理者です", "Only brokers and admins list experts")
    if not principal.is_privileged:
        where.verification = VERIFIED  # pending and rejected entries are not on the list
    filtered_keys = {
        key
        for key, value in (
            ("prefectures", where.prefecture),
            ("strengths", where.topic),
            ("skills", where.skill),
            ("services", where.service),
        )
        if value
    }
    statement = repository.expert_query(where)
    if principal.is_privileged or not filtered_keys:
        rows, total = repository.page(session, statement, limit=limit, offset=offset)
        items = [_view(expert, principal, settings) for expert in rows]
    else:
        # Per-row visibility decides whether the matched field counts, so page in Python.
        items, total = [], 0
        for expert in repository.stream(session, statement):
            if not filtered_keys <= visible_keys(expert, audience_of(principal, expert)):
                continue
            if offset <= total < offset + limit:
                items.append(_view(expert, principal, settings))
            total += 1
    return Page[ExpertView](items=items, total=total, limit=limit, offset=offset)


# --- verification (admins) ----------------------------------------------------------------------


def _require_admin(principal: Principal) -> None:
    require_authenticated(principal)
    if not principal.is_privileged:
        raise forbidden("管理者だけが行えます", "Only admins may do this")


def _decided(expert: Expert, principal: Principal, verification: str, reason: str | None) -> None:
    expert.verification = verification
    expert.verification_reason = reason
    expert.verification_decided_at = utcnow()
    expert.verification_decided_by = principal.sub


def _locked_expert(session: Session, expert_id: str) -> Expert:
    expert = repository.get_expert(session, expert_id, for_update=True)
    if expert is None:
        raise not_found("専門家", "Expert")
    return expert


def verify_expert(session: Session, settings: ProfilesSettings, principal: Principal, expert_id: str) -> ExpertView:
    """The admin checked the entry against the official register: it is listed from now on (its events go
    to search and matching with the next version) and the expert is told."""
    _require_admin(principal)
    expert = _locked_expert(session, expert_id)
    if expert.verification == VERIFIED:
        return _view(expert, principal, settings)
    _check_unique(session, expert, profile_of(expert), expert.owner_user_id)
    _decided(expert, principal, VERIFIED, None)
    _changed(session, expert, settings)
    if expert.owner_user_id:
        add_verification_event(session, expert, user_id=expert.owner_user_id, verified=True)
    return _view(expert, principal, settings)


def reject_expert(
    session: Session, settings: ProfilesSettings, principal: Principal, expert_id: str, reason: str
) -> ExpertView:
    """The entry does not match the register: it stays off the list, and the expert is told why. Only a
    pending (or already rejected) entry can be rejected; a verified one is corrected instead."""
    _require_admin(principal)
    expert = _locked_expert(session, expert_id)
    if expert.verification == VERIFIED:
        raise ApiError(
            409,
            "already_verified",
            "確認済みの登録は却下できません。内容を訂正してください",
            "A verified entry cannot be rejected; correct it instead",
        )
    _decided(expert, principal, REJECTED, reason)
    _changed(session, expert, settings)
    if expert.owner_user_id:
        add_verification_event(session, expert, user_id=expert.owner_user_id, verified=False, reason=reason)
    return _view(expert, principal, settings)


def _claim_view(claim: RegistrationClaim, verification: str | None) -> ClaimRead:
    return ClaimRead(
        id=claim.id,
        registration_number=claim.registration_number,
        claimant_user_id=claim.claimant_user_id,
        expert_id=claim.expert_id,
        held_by_user_id=claim.held_by_user_id,
        held_entry_verification=verification,
        submitted=claim.submitted,
        status=claim.status,
        decision_reason=claim.decision_reason,
        decided_by=claim.decided_by,
        decided_at=aware(claim.decided_at),
        created_at=aware(claim.created_at),  # type: ignore[arg-type]
    )


def list_claims(
    session: Session, principal: Principal, *, status: str | None, limit: int, offset: int
) -> Page[ClaimRead]:
    _require_admin(principal)
    rows, total = repository.list_claims(session, status=status, limit=limit, offset=offset)
    verification = repository.verification_of(session, [claim.expert_id for claim in rows])
    items = [_claim_view(claim, verification.get(claim.expert_id)) for claim in rows]
    return Page[ClaimRead](items=items, total=total, limit=limit, offset=offset)


def _open_claim(session: Session, claim_id: str) -> RegistrationClaim:
    claim = repository.get_claim(session, claim_id, for_update=True)
    if claim is None:
        raise not_found("申立て", "Claim")
    if claim.status != "open":
        raise ApiError(
            409, "claim_closed", f"この申立ては処理済みです（{claim.status}）", f"This claim is closed ({claim.status})"
        )
    return claim


def accept_claim(session: Session, settings: ProfilesSettings, principal: Principal, claim_id: str) -> ClaimRead:
    """The claimant holds the registration number: the entry becomes theirs and is verified. An entry an
    admin had verified keeps its (the operator's) data; an unverified one takes the profile the claimant
    sent. Whoever held it before is told it is no longer theirs."""
    _require_admin(principal)
    claim = _open_claim(session, claim_id)
    expert = _locked_expert(session, claim.expert_id)
    previous = expert.owner_user_id
    if previous != claim.claimant_user_id:
        _check_unique(session, expert, {}, claim.claimant_user_id)  # one entry per account
    if expert.verification != VERIFIED:
        document = profile_document(validate_profile(claim.submitted))
        _check_unique(session, expert, document, claim.claimant_user_id)
        apply_profile(expert, document, content_hash(document))
    expert.owner_user_id = claim.claimant_user_id
    _decided(expert, principal, VERIFIED, None)
    _changed(session, expert, settings)
    claim.status, claim.decided_by, claim.decided_at = "accepted", principal.sub, utcnow()
    session.add(claim)
    add_verification_event(session, expert, user_id=claim.claimant_user_id, verified=True, claim_id=claim.id)
    if previous and previous != claim.claimant_user_id:
        add_verification_event(
            session,
            expert,
            user_id=previous,
            verified=False,
            claim_id=claim.id,
            reason="登録簿との照合の結果、この登録番号は別のアカウントの方のものと確認されました / "
            "Checked against the register, this registration number belongs to another account",
        )
    _flush(session)
    return _claim_view(claim, expert.verification)


def reject_claim(session: Session, principal: Principal, claim_id: str, reason: str) -> ClaimRead:
    _require_admin(principal)
    claim = _open_claim(session, claim_id)
    expert = _locked_expert(session, claim.expert_id)
    claim.status, claim.decision_reason = "rejected", reason
    claim.decided_by, claim.decided_at = principal.sub, utcnow()
    session.add(claim)
    add_verification_event(
        session,
        expert,
        user_id=claim.claimant_user_id,
        verified=False,
        reason=reason,
        claim_id=claim.id,
        registration_number=claim.registration_number,
    )
    _flush(session)
    return _claim_view(claim, expert.verification)


# --- corrections of regulated data -----------------------------------------------------------------


def _correction_view(correction: CorrectionRequest, expert: Expert | None = None) -> CorrectionRead:
    current = profile_of(expert)[correction.field] if expert is not None else None
    return CorrectionRead(
        id=correction.id,
        expert_id=correction.expert_id,
        requested_by=correction.requested_by,
        field=correction.field,
        proposed_value=correction.proposed_value,
        current_value=current,
        reason=correction.reason,
        status=correction.status,
        decision_reason=correction.decision_reason,
        decided_by=correction.decided_by,
        decided_at=aware(correction.decided_at),
        created_at=aware(correction.created_at),  # type: ignore[arg-type]
    )


def _corrected(expert: Expert, field: str, value: Any) -> dict[str, Any]:
    """The entry's profile with one regulated field changed, validated as a whole (422 naming the field)."""
    merged = profile_of(expert) | {field: value}
    return profile_document(validate_profile(merged))


def file_correction(session: Session, principal: Principal, expert_id: str, body: CorrectionCreate) -> CorrectionRead:
    """The owner asks the operator to correct regulated data; the value is checked now (as the whole profile
    it would make), the change waits for an admin."""
    require_authenticated(principal)
    expert = repository.get_expert(session, expert_id)
    if expert is None or audience_of(principal, expert) != Audience.OWNER:
        raise not_found("専門家", "Expert")
    value = body.model_dump(mode="json")["proposed_value"]
    document = _corrected(expert, body.field, value)
    if document[body.field] == profile_of(expert)[body.field]:
        raise invalid_field("proposed_value", "現在の値と同じです", "That is the current value")
    correction = CorrectionRequest(
        expert_id=expert.id,
        requested_by=principal.sub,
        field=body.field,
        proposed_value=document[body.field],
        reason=body.reason,
    )
    session.add(correction)
    _flush(session)
    return _correction_view(correction, expert)


def expert_corrections(
    session: Session, principal: Principal, expert_id: str, *, limit: int, offset: int
) -> Page[CorrectionRead]:
    require_authenticated(principal)
    expert = repository.get_expert(session, expert_id)
    if expert is None or audience_of(principal, expert) != Audience.OWNER:
        raise not_found("専門家", "Expert")
    rows, total = repository.list_corrections(session, expert_id=expert.id, limit=limit, offset=offset)
    return Page[CorrectionRead](
        items=[_correction_view(row, expert) for row in rows], total=total, limit=limit, offset=offset
    )


def list_corrections(
    session: Session, principal: Principal, *, status: str | None, limit: int, offset: int
) -> Page[CorrectionRead]:
    _require_admin(principal)
    rows, total = repository.list_corrections(session, status=status, limit=limit, offset=offset)
    items = [_correction_view(row, repository.get_expert(session, row.expert_id)) for row in rows]
    return Page[CorrectionRead](items=items, total=total, limit=limit, offset=offset)


def _open_correction(session: Session, correction_id: str) -> tuple[CorrectionRequest, Expert]:
    correction = repository.get_correction(session, correction_id, for_update=True)
    if correction is None:
        raise not_found("訂正依頼", "Correction request")
    if correction.status != "open":
        raise ApiError(
            409,
            "correction_closed",
            f"この訂正依頼は処理済みです（{correction.status}）",
            f"This correction request is closed ({correction.status})",
        )
    return correction, _locked_expert(session, correction.expert_id)


def accept_correction(
    session: Session, settings: ProfilesSettings, principal: Principal, correction_id: str
) -> CorrectionRead:
    """The operator applies the correction as an admin's change (validated as a whole, unique numbers)."""
    _require_admin(principal)
    correction, expert = _open_correction(session, correction_id)
    document = _corrected(expert, correction.field, correction.proposed_value)
    _check_unique(session, expert, document, expert.owner_user_id)
    digest = content_hash(document)
    if digest != expert.content_hash:
        apply_profile(expert, document, digest)
        _changed(session, expert, settings)
    correction.status, correction.decided_by, correction.decided_at = "accepted", principal.sub, utcnow()
    session.add(correction)
    add_correction_event(session, expert, correction)
    _flush(session)
    return _correction_view(correction, expert)


def reject_correction(session: Session, principal: Principal, correction_id: str, reason: str) -> CorrectionRead:
    _require_admin(principal)
    correction, expert = _open_correction(session, correction_id)
    correction.status, correction.decision_reason = "rejected", reason
    correction.decided_by, correction.decided_at = principal.sub, utcnow()
    session.add(correction)
    add_correction_event(session, expert, correction)
    _flush(session)
    return _correction_view(correction, expert)


# --- organisations -------------------------------------------------------------------------------


def _organization_view(organization: Organization, members: list[str]) -> OrganizationRead:
    return OrganizationRead(
        id=organization.id,
        name=organization.name,
        prefecture=organization.prefecture,
        prefecture_name=prefectures()[organization.prefecture].name,
        industry=organization.industry,
        employees=organization.employees,
        digitalization_stage=organization.digitalization_stage,
        security_action=organization.security_action,
        scs_target=organization.scs_target,
        member_user_ids=members,
        version=organization.version,
        created_at=aware(organization.created_at),
        updated_at=aware(organization.updated_at),
    )


def _can_read_organization(session: Session, principal: Principal, organization: Organization) -> bool:
    if principal.covers(organization.prefecture):
        return True
    return repository.is_member(session, organization.id, principal.sub)


def _organization(session: Session, principal: Principal, organization_id: str, *, write: bool) -> Organization:
    require_authenticated(principal)
    organization = repository.get_organization(session, organization_id, for_update=write)
    # Someone who may not read it learns nothing, not even that it exists.
    if organization is None or not _can_read_organization(session, principal, organization):
        raise not_found("組織", "Organization")
    if write and not (principal.is_privileged or repository.is_member(session, organization.id, principal.sub)):
        raise forbidden(
            "組織の情報を変更できるのはメンバーと管理者です", "Only members and admins change an organization"
        )
    return organization


def create_organization(session: Session, principal: Principal, body: OrganizationCreate) -> OrganizationRead:
    require_authenticated(principal)
    members = set(body.member_user_ids)
    if principal.role == Role.SME:
        members.add(principal.sub)
    elif principal.is_regional_staff:
        if not principal.covers(body.prefecture):
            raise forbidden(
                "担当外の都道府県の組織は登録できません", "You may only register organizations in your prefectures"
            )
    elif not principal.is_privileged:
        raise forbidden(
            "組織を登録できるのは中小企業・支援機関・管理者です",
            "Only SMEs, brokers and admins register organizations",
        )
    organization = Organization(**body.model_dump(exclude={"member_user_ids"}), created_by=principal.sub)
    session.add(organization)
    session.flush()
    # Only the SME who creates it joins at once; everyone else named is invited and joins by accepting.
    joined = {principal.sub} if principal.role == Role.SME else set()
    for user_id in joined:
        repository.add_member(session, organization.id, user_id)
    add_organization_event(session, organization, sorted(joined))
    for user_id in sorted(members - joined):
        _invite(session, principal, organization, user_id)
    return _organization_view(organization, sorted(joined))


def get_organization(session: Session, principal: Principal, organization_id: str) -> OrganizationRead:
    organization = _organization(session, principal, organization_id, write=False)
    return _organization_view(organization, repository.member_ids(session, organization.id))


def update_organization(
    session: Session, principal: Principal, organization_id: str, body: OrganizationPatch
) -> OrganizationRead:
    organization = _organization(session, principal, organization_id, write=True)
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "prefecture", "security_action", "scs_target"):
        if field in changes and changes[field] is None:
            raise invalid_field(field, "空にはできません", "Must not be empty")
    changed = {key: value for key, value in changes.items() if getattr(organization, key) != value}
    members = repository.member_ids(session, organization.id)
    if changed:
        record_organization_change(session, organization, members, **changed)
    return _organization_view(organization, members)


def remove_member(session: Session, principal: Principal, organization_id: str, user_id: str) -> OrganizationRead:
    organization = _organization(session, principal, organization_id, write=True)
    if not repository.remove_member(session, organization.id, user_id):
        raise not_found("メンバー", "Member")
    session.flush()
    members = repository.member_ids(session, organization.id)
    record_organization_change(session, organization, members)
    return _organization_view(organization, members)


# --- invitations: joining an organisation takes the user's consent ---------------------------------


def _invitation_view(invitation: OrganizationInvitation, organization_name: str) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        organization_id=invitation.organization_id,
        organization_name=organization_name,
        user_id=invitation.user_id,
        invited_by=invitation.invited_by,
        status=invitation.status,
        created_at=aware(invitation.created_at),  # type: ignore[arg-type]
        decided_at=aware(invitation.decided_at),
    )


def _invite(session: Session, principal: Principal, organization: Organization, user_id: str) -> OrganizationInvitation:
    invitation = repository.pending_invitation(session, organization.id, user_id)
    if invitation is None:
        invitation = OrganizationInvitation(organization_id=organization.id, user_id=user_id, invited_by=principal.sub)
        session.add(invitation)
        session.flush()
        add_invitation_event(session, organization, invitation)
    return invitation


def invite_member(session: Session, principal: Principal, organization_id: str, user_id: str) -> InvitationRead:
    """A member (or an admin) invites a user; the user becomes a member only by accepting. Inviting again
    while an invitation is pending returns that invitation."""
    organization = _organization(session, principal, organization_id, write=True)
    if repository.is_member(session, organization.id, user_id):
        ja, en = "このユーザーは既にメンバーです", "This user is already a member"
        raise ApiError(409, "already_member", ja, en, [FieldError("user_id", ja, en)])
    return _invitation_view(_invite(session, principal, organization, user_id), organization.name)


def my_invitations(
    session: Session, principal: Principal, *, status: str | None, limit: int, offset: int
) -> Page[InvitationRead]:
    """The caller's invitations (pending ones by default): all an invited user sees of the organisation."""
    require_authenticated(principal)
    rows, total = repository.list_invitations(session, user_id=principal.sub, status=status, limit=limit, offset=offset)
    items = [_invitation_view(invitation, name) for invitation, name in rows]
    return Page[InvitationRead](items=items, total=total, limit=limit, offset=offset)


def organization_invitations(
    session: Session, principal: Principal, organization_id: str, *, status: str | None, limit: int, offset: int
) -> Page[InvitationRead]:
    """Members and admins: whom the organisation has invited."""
    organization = _organization(session, principal, organization_id, write=True)
    rows, total = repository.list_invitations(
        session, organization_id=organization.id, status=status, limit=limit, offset=offset
    )
    items = [_invitation_view(invitation, name) for invitation, name in rows]
    return Page[InvitationRead](items=items, total=total, limit=limit, offset=offset)


def _pending(invitation: OrganizationInvitation) -> None:
    if invitation.status != "pending":
        raise ApiError(
            409,
            "invitation_closed",
            f"この招待は既に処理済みです（{invitation.status}）",
            f"This invitation is no longer pending ({invitation.status})",
        )


def answer_invitation(session: Session, principal: Principal, invitation_id: str, *, accept: bool) -> InvitationRead:
    """Only the invited user accepts or declines (anyone else: 404, the invitation does not exist for them)."""
    require_authenticated(principal)
    invitation = repository.get_invitation(session, invitation_id, for_update=True)
    if invitation is None or invitation.user_id != principal.sub:
        raise not_found("招待", "Invitation")
    _pending(invitation)
    organization = repository.get_organization(session, invitation.organization_id, for_update=True)
    assert organization is not None  # a foreign key
    invitation.status = "accepted" if accept else "declined"
    invitation.decided_at = utcnow()
    session.add(invitation)
    if accept and repository.add_member(session, organization.id, principal.sub):
        session.flush()
        record_organization_change(session, organization, repository.member_ids(session, organization.id))
    _flush(session)
    return _invitation_view(invitation, organization.name)


def cancel_invitation(
    session: Session, principal: Principal, organization_id: str, invitation_id: str
) -> InvitationRead:
    organization = _organization(session, principal, organization_id, write=True)
    invitation = repository.get_invitation(session, invitation_id, for_update=True)
    if invitation is None or invitation.organization_id != organization.id:
        raise not_found("招待", "Invitation")
    _pending(invitation)
    invitation.status = "cancelled"
    invitation.decided_at = utcnow()
    session.add(invitation)
    _flush(session)
    return _invitation_view(invitation, organization.name)


def list_organizations(session: Session, principal: Principal, *, limit: int, offset: int) -> Page[OrganizationRead]:
    """SMEs see theirs, brokers those of their prefectures, admins all."""
    require_authenticated(principal)
    member: str | None = None
    prefecture_codes: list[str] | None = None
    if principal.role == Role.SME:
        member = principal.sub
    elif principal.is_regional_staff:
        prefecture_codes = list(principal.prefectures)
    elif not principal.is_privileged:
        raise forbidden("組織の一覧は見られません", "You may not list organizations")
    rows, total = repository.list_organizations(
        session, member=member, prefectures=prefecture_codes, limit=limit, offset=offset
    )
    members = repository.members_of(session, [row.id for row in rows])
    items = [_organization_view(row, members[row.id]) for row in rows]
    return Page[OrganizationRead](items=items, total=total, limit=limit, offset=offset)


def published_experts(session: Session, *, limit: int, offset: int) -> Page[PublishedExpertRead]:
    """What the search index should hold, a page at a time (admins only: the route checks): each listed
    entry's public view as its latest published event carries it, with that event's version."""
    rows, total = repository.listed_experts_by_id(session, limit=limit, offset=offset)
    items = [
        PublishedExpertRead(version=expert.version, data=public_event(expert, aware(expert.updated_at)))
        for expert in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)

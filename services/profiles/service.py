"""What the profiles service does: create, change, confirm and list entries of the active list, and SME
organisations. Each change and its outbox events commit in one transaction; who may do what on which
object is checked here, whatever path (API, import, job) the change comes from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from tsunagu.auth import Principal, Role, require_authenticated
from tsunagu.db import session_scope, utcnow
from tsunagu.errors import ApiError, FieldError, forbidden, invalid_field, not_found, validation_error
from tsunagu.reference import prefectures

from services.profiles import repository
from services.profiles.events import add_expert_events, add_organization_event
from services.profiles.freshness import REASONS, apply_status, evaluate, status_change
from services.profiles.models import Expert, Organization, aware, tags
from services.profiles.repository import ExpertFilter
from services.profiles.schemas import (
    DEFAULT_VISIBILITY,
    PATCHABLE_FIELDS,
    ExpertCreate,
    ExpertIn,
    MemberAdd,
    OrganizationCreate,
    OrganizationPatch,
    VisibilityUpdate,
)
from services.profiles.settings import ProfilesSettings
from services.profiles.visibility import Audience, audience_of, expert_view, visible_keys

def _organization_changed(session: Session, organization: Organization, members: list[str]) -> None:
    """A new version of the organisation, and its event, in the caller's transaction."""
    organization.version += 1
    organization.updated_at = utcnow()
    session.add(organization)
    add_organization_event(session, organization, members)


# --- profile <-> row ---------------------------------------------------------------------------

_PROFILE_COLUMNS = tuple(name for name in ExpertIn.model_fields)


def normalized_visibility(levels: dict[str, str]) -> dict[str, str]:
    """Keep only the settings that differ from the default, so equal choices hash equally."""
    return {key: levels[key] for key in sorted(levels) if DEFAULT_VISIBILITY.get(key) != levels[key]}


def profile_document(profile: ExpertIn) -> dict[str, Any]:
    """The profile as stored (JSON types), the same whichever path it came through. Only the profile
    fields: who owns the entry is not part of it (and so not of its content hash)."""
    document = profile.model_dump(mode="json", include=set(_PROFILE_COLUMNS))
    document["visibility"] = normalized_visibility(document["visibility"])
    return document


def content_hash(document: dict[str, Any]) -> str:
    raw = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


_DATE_COLUMNS = ("registration_date", "renewal_deadline")


def profile_of(expert: Expert) -> dict[str, Any]:
    """The stored entry as an ExpertIn body (what a PATCH is merged into, what the export writes)."""
    profile = {name: getattr(expert, name) for name in _PROFILE_COLUMNS}
    for name in _DATE_COLUMNS:
        if profile[name] is not None:
            profile[name] = profile[name].isoformat()
    return profile


def apply_profile(expert: Expert, document: dict[str, Any], digest: str) -> None:
    for name in _PROFILE_COLUMNS:
        value = document[name]
        if name in _DATE_COLUMNS and value is not None:
            value = date.fromisoformat(value)
        setattr(expert, name, value)
    expert.content_hash = digest
    expert.prefecture_tags = tags(expert.prefectures)
    expert.topic_tags = tags([item["topic"] for item in expert.strengths])
    expert.skill_tags = tags(expert.skills)
    expert.service_tags = tags(expert.services)


def validate_profile(data: dict[str, Any]) -> ExpertIn:
    try:
        return ExpertIn.model_validate(data)
    except ValidationError as error:
        raise validation_error(list(error.errors())) from error


def duplicate(field: str, value: str) -> ApiError:
    messages = {
        "registration_number": (f"登録番号 {value} は既に登録されています", f"Registration number {value} is already listed"),
        "external_id": (f"外部ID {value} は既に使われています", f"External id {value} is already used"),
        "owner_user_id": ("このユーザーのプロフィールは既にあります", "This user already has a profile"),
    }
    ja, en = messages[field]
    return ApiError(409, "duplicate", ja, en, [FieldError(field, ja, en)])


@dataclass
class ExpertPage:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class ProfilesService:
    def __init__(self, engine: Engine, settings: ProfilesSettings, events_written: Callable[[], None] = lambda: None):
        self.engine = engine
        self.settings = settings
        self.events_written = events_written

    def _view(self, expert: Expert, principal: Principal) -> dict[str, Any]:
        return expert_view(expert, principal, max_age_days=self.settings.confirmation_max_age_days)

    # --- experts ---------------------------------------------------------------------------------

    def _check_unique(self, session: Session, expert: Expert, document: dict[str, Any], owner: str | None) -> None:
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

    def _commit_change(self, session: Session, expert: Expert, *, confirmed: bool = False, now: datetime) -> None:
        """Status by the freshness rules, a new version, the events: the common end of every change."""
        change = status_change(expert, evaluate(expert, now.date(), self.settings), confirmed=confirmed)
        apply_status(expert, change, now)
        expert.updated_at = now
        session.add(expert)
        try:
            session.flush()  # unique constraints fire here, inside the transaction, before any event
        except IntegrityError as error:
            raise ApiError(409, "conflict", "他の変更と競合しました", "Conflicting change; please retry") from error
        add_expert_events(session, expert, change)

    def create_expert(self, principal: Principal, body: ExpertCreate) -> dict[str, Any]:
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
        with session_scope(self.engine) as session:
            expert = Expert(kind=body.kind, name=body.name, owner_user_id=owner, content_hash="", last_confirmed_at=now)
            self._check_unique(session, expert, document, owner)
            apply_profile(expert, document, content_hash(document))
            expert.created_at = expert.status_changed_at = now
            self._commit_change(session, expert, now=now)
        self.events_written()
        return self._view(expert, principal)

    def _owned(self, session: Session, principal: Principal, expert_id: str) -> Expert:
        """The entry, locked for change, if the caller is its owner or privileged."""
        require_authenticated(principal)
        expert = repository.get_expert(session, expert_id, for_update=True)
        if expert is None:
            raise not_found("専門家", "Expert")
        if audience_of(principal, expert) != Audience.OWNER:
            raise forbidden("本人と管理者だけが変更できます", "Only the expert and admins may change this entry")
        return expert

    def get_expert(self, principal: Principal, expert_id: str) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            expert = repository.get_expert(session, expert_id)
            if expert is None:
                raise not_found("専門家", "Expert")
            return self._view(expert, principal)

    def my_expert(self, principal: Principal) -> dict[str, Any]:
        require_authenticated(principal)
        with session_scope(self.engine) as session:
            expert = repository.expert_by_owner(session, principal.sub)
            if expert is None:
                raise not_found("あなたのプロフィール", "Your profile")
            return self._view(expert, principal)

    def update_expert(self, principal: Principal, expert_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise invalid_field("body", "JSON オブジェクトで送信してください", "Send a JSON object")
        with session_scope(self.engine) as session:
            expert = self._owned(session, principal, expert_id)
            for key in patch:
                if key == "kind":
                    if patch[key] != expert.kind:
                        raise invalid_field("kind", "種別は変更できません", "The kind of an entry cannot change")
                elif key not in PATCHABLE_FIELDS:
                    raise invalid_field(key, "この項目は指定できません", "This field is not allowed")
            if not principal.is_privileged:
                if "owner_user_id" in patch:
                    raise forbidden("所有者を変更できるのは管理者です", "Only admins change the owner")
                if "registration_number" in patch and patch["registration_number"] != expert.registration_number:
                    raise invalid_field(
                        "registration_number",
                        "登録番号の訂正は管理者に依頼してください",
                        "Ask an admin to correct a registration number",
                    )
            merged = profile_of(expert) | {key: value for key, value in patch.items() if key != "owner_user_id"}
            if isinstance(patch.get("visibility"), dict):
                merged["visibility"] = (expert.visibility or {}) | patch["visibility"]
            document = profile_document(validate_profile(merged))
            digest = content_hash(document)
            owner = patch.get("owner_user_id", expert.owner_user_id)
            if owner is not None and (not isinstance(owner, str) or not 0 < len(owner) <= 64):
                raise invalid_field("owner_user_id", "1〜64文字で指定してください", "1 to 64 characters")
            if digest == expert.content_hash and owner == expert.owner_user_id:
                return self._view(expert, principal)  # nothing changed: no new version, no event
            self._check_unique(session, expert, document, owner)
            apply_profile(expert, document, digest)
            expert.owner_user_id = owner
            expert.version += 1
            self._commit_change(session, expert, now=utcnow())
        self.events_written()
        return self._view(expert, principal)

    def set_visibility(self, principal: Principal, expert_id: str, body: VisibilityUpdate) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            expert = self._owned(session, principal, expert_id)
            document = profile_of(expert) | {"visibility": normalized_visibility(body.visibility)}
            digest = content_hash(document)
            if digest != expert.content_hash:
                apply_profile(expert, document, digest)
                expert.version += 1
                self._commit_change(session, expert, now=utcnow())
        self.events_written()
        return self._view(expert, principal)

    def confirm_active(self, principal: Principal, expert_id: str) -> dict[str, Any]:
        """「活動中」の確認: one action; reactivates the entry if nothing else keeps it inactive."""
        with session_scope(self.engine) as session:
            expert = self._owned(session, principal, expert_id)
            now = utcnow()
            expert.last_confirmed_at = now
            expert.reminders = {key: value for key, value in (expert.reminders or {}).items() if key != "confirmation_due"}
            expert.version += 1
            self._commit_change(session, expert, confirmed=True, now=now)
        self.events_written()
        view = self._view(expert, principal)
        if not expert.active:
            ja, en = REASONS[expert.status_reason or ""]
            view["message_ja"] = f"確認を記録しましたが、次の理由で掲載は停止中です: {ja}"
            view["message_en"] = f"Confirmation recorded, but the entry stays inactive: {en}"
        return view

    def list_experts(self, principal: Principal, where: ExpertFilter, *, limit: int, offset: int) -> ExpertPage:
        """For brokers (支援機関) and admins. A filter on a field only matches entries whose field the
        caller may see, so a filter cannot reveal what an expert keeps private."""
        require_authenticated(principal)
        if not (principal.is_privileged or principal.role in (Role.BROKER, Role.HUB)):
            raise forbidden("一覧を見られるのは支援機関と管理者です", "Only brokers and admins list experts")
        filtered_keys = [
            key
            for key, value in (
                ("prefectures", where.prefecture),
                ("strengths", where.topic),
                ("skills", where.skill),
                ("services", where.service),
            )
            if value
        ]
        statement = repository.expert_query(where)
        with session_scope(self.engine) as session:
            if principal.is_privileged or not filtered_keys:
                rows, total = repository.page(session, statement, limit=limit, offset=offset)
                items = [self._view(expert, principal) for expert in rows]
            else:
                # Per-row visibility decides whether the matched field counts, so page in Python.
                items, total = [], 0
                for expert in repository.stream(session, statement):
                    if not set(filtered_keys) <= visible_keys(expert, audience_of(principal, expert)):
                        continue
                    if offset <= total < offset + limit:
                        items.append(self._view(expert, principal))
                    total += 1
        return ExpertPage(items=items, total=total, limit=limit, offset=offset)

    # --- organisations ---------------------------------------------------------------------------

    def _organization_view(self, organization: Organization, members: list[str]) -> dict[str, Any]:
        return {
            "id": organization.id,
            "name": organization.name,
            "prefecture": organization.prefecture,
            "prefecture_name": prefectures()[organization.prefecture].name,
            "industry": organization.industry,
            "employees": organization.employees,
            "digitalization_stage": organization.digitalization_stage,
            "security_action": organization.security_action,
            "scs_target": organization.scs_target,
            "member_user_ids": members,
            "version": organization.version,
            "created_at": aware(organization.created_at),
            "updated_at": aware(organization.updated_at),
        }

    def _can_read_organization(self, session: Session, principal: Principal, organization: Organization) -> bool:
        if principal.is_privileged or repository.is_member(session, organization.id, principal.sub):
            return True
        return principal.role in (Role.BROKER, Role.HUB) and organization.prefecture in principal.prefectures

    def _organization(self, session: Session, principal: Principal, organization_id: str, *, write: bool) -> Organization:
        require_authenticated(principal)
        organization = repository.get_organization(session, organization_id, for_update=write)
        # Someone who may not read it learns nothing, not even that it exists.
        if organization is None or not self._can_read_organization(session, principal, organization):
            raise not_found("組織", "Organization")
        if write and not (principal.is_privileged or repository.is_member(session, organization.id, principal.sub)):
            raise forbidden("組織の情報を変更できるのはメンバーと管理者です", "Only members and admins change an organization")
        return organization

    def create_organization(self, principal: Principal, body: OrganizationCreate) -> dict[str, Any]:
        require_authenticated(principal)
        members = set(body.member_user_ids)
        if principal.role == Role.SME:
            members.add(principal.sub)
        elif principal.role in (Role.BROKER, Role.HUB):
            if body.prefecture not in principal.prefectures:
                raise forbidden("担当外の都道府県の組織は登録できません", "You may only register organizations in your prefectures")
        elif not principal.is_privileged:
            raise forbidden("組織を登録できるのは中小企業・支援機関・管理者です", "Only SMEs, brokers and admins register organizations")
        with session_scope(self.engine) as session:
            organization = Organization(**body.model_dump(exclude={"member_user_ids"}), created_by=principal.sub)
            session.add(organization)
            session.flush()
            for user_id in members:
                repository.add_member(session, organization.id, user_id)
            add_organization_event(session, organization, sorted(members))
        self.events_written()
        return self._organization_view(organization, sorted(members))

    def get_organization(self, principal: Principal, organization_id: str) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            organization = self._organization(session, principal, organization_id, write=False)
            return self._organization_view(organization, repository.member_ids(session, organization.id))

    def update_organization(self, principal: Principal, organization_id: str, body: OrganizationPatch) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            organization = self._organization(session, principal, organization_id, write=True)
            changes = body.model_dump(include=body.model_fields_set)
            for field in ("name", "prefecture", "security_action", "scs_target"):
                if field in changes and changes[field] is None:
                    raise invalid_field(field, "空にはできません", "Must not be empty")
            changed = {key: value for key, value in changes.items() if getattr(organization, key) != value}
            members = repository.member_ids(session, organization.id)
            if changed:
                for key, value in changed.items():
                    setattr(organization, key, value)
                _organization_changed(session, organization, members)
        if changed:
            self.events_written()
        return self._organization_view(organization, members)

    def change_member(self, principal: Principal, organization_id: str, body: MemberAdd, *, add: bool) -> dict[str, Any]:
        with session_scope(self.engine) as session:
            organization = self._organization(session, principal, organization_id, write=True)
            if add:
                changed = repository.add_member(session, organization.id, body.user_id)
            else:
                changed = repository.remove_member(session, organization.id, body.user_id)
                if not changed:
                    raise not_found("メンバー", "Member")
            session.flush()
            members = repository.member_ids(session, organization.id)
            if changed:
                _organization_changed(session, organization, members)
        if changed:
            self.events_written()
        return self._organization_view(organization, members)

    def list_organizations(self, principal: Principal, *, limit: int, offset: int) -> dict[str, Any]:
        """SMEs see theirs, brokers those of their prefectures, admins all."""
        require_authenticated(principal)
        member: str | None = None
        prefecture_codes: list[str] | None = None
        if principal.role == Role.SME:
            member = principal.sub
        elif principal.role in (Role.BROKER, Role.HUB):
            prefecture_codes = list(principal.prefectures)
        elif not principal.is_privileged:
            raise forbidden("組織の一覧は見られません", "You may not list organizations")
        with session_scope(self.engine) as session:
            rows, total = repository.list_organizations(
                session, member=member, prefectures=prefecture_codes, limit=limit, offset=offset
            )
            members = repository.members_of(session, [row.id for row in rows])
            items = [self._organization_view(row, members[row.id]) for row in rows]
        return {"items": items, "total": total, "limit": limit, "offset": offset}


def stale_cutoff(days: int) -> datetime:
    return utcnow() - timedelta(days=days)


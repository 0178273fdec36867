"""Bodies of the profiles service: what comes in (validated and normalised) and what goes out.

The same input models validate the JSON API and every row of a CSV import, so both paths accept and refuse
exactly the same things. Validators raise ``ValueError("日本語 / English")``; the kernel's error handler
splits that into the two languages and names the field (``strengths.0.topic``, ``fee_max_yen`` ...).
Shared input rules (prefectures, tags, topics, registration numbers, e-mail, phone) are the kernel's
(``tsunagu.types``); the domain's vocabulary is in ``catalogue.py``.

The response models say what comes back. A profile view leaves out what the caller may not see (the
routes use ``response_model_exclude_unset``), so a hidden field is absent from the JSON, not null.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, ValidationInfo, field_validator

from services.profiles.catalogue import (
    FIRST_REGISTRATION_DATE,
    MANDATORY_PUBLIC,
    REGISTRATION_YEARS,
    SERVICE_CATALOGUE,
    VISIBILITY_FIELDS,
    Level,
    add_years,
    first_renewal_deadline,
)
from tsunagu.contracts import ExpertPublicV1
from tsunagu.reference import dss_roles
from tsunagu.types import (
    Line,
    PrefectureCode,
    Tag,
    TopicId,
    clean_line,
    normalize_email,
    normalize_phone,
    normalize_registration_number,
    normalize_tag,
    optional_text,
)
from tsunagu.validation import CONTROL_CHARACTER_MESSAGE, InputModel, has_forbidden_characters

ExpertKind = Literal["sekisupe", "dx_talent"]
FeeUnit = Literal["hour", "day", "engagement"]
Availability = Literal["available", "limited", "unavailable"]
ProgrammeStatus = Literal["participant", "graduate"]
SecurityAction = Literal["none", "one_star", "two_star"]
ScsTarget = Literal["none", "scs_3", "scs_4"]


# --- rules of this service's own fields ----------------------------------------------------------

_KANA = re.compile(r"^[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fc-\u30fe・ ]+$")


def _line(value: str) -> str:
    if has_forbidden_characters(value):
        raise ValueError(CONTROL_CHARACTER_MESSAGE)
    value = clean_line(value)
    if not value:
        raise ValueError("空にはできません / Must not be empty")
    return value


def _multiline(value: str) -> str:
    if has_forbidden_characters(value):
        raise ValueError(CONTROL_CHARACTER_MESSAGE)
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    return value or None  # type: ignore[return-value]


def _kana(value: str) -> str:
    value = _line(value)
    if not _KANA.match(value):
        raise ValueError("ひらがなかカタカナで入力してください / Use hiragana or katakana")
    return value


def _dss_role(value: str) -> str:
    value = value.strip()
    if value not in dss_roles():
        raise ValueError(
            f"役割「{value}」はデジタルスキル標準の5類型にありません / Unknown デジタルスキル標準 role: {value}"
        )
    return value


_SERVICE_BY_LABEL = {clean_line(label): key for key, label in SERVICE_CATALOGUE.items()}


def _service(value: str) -> str:
    text = clean_line(value)
    key = text if text in SERVICE_CATALOGUE else _SERVICE_BY_LABEL.get(text)
    if key is None:
        raise ValueError(f"サービス「{value}」は一覧にありません / Unknown service: {value}")
    return key


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _not_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("未来の日付は指定できません / The date may not be in the future")
    return value


def _known_visibility(values: dict[str, Level]) -> dict[str, Level]:
    for key in values:
        if key in MANDATORY_PUBLIC:
            raise ValueError(
                f"「{key}」は法定の公開項目のため非公開にできません / {key} is mandatory public registration data"
            )
        if key not in VISIBILITY_FIELDS:
            raise ValueError(f"公開設定の項目「{key}」はありません / Unknown visibility field: {key}")
    return values


Qualification = Annotated[Line, Field(max_length=100)]
ServiceId = Annotated[str, Field(max_length=100), AfterValidator(_service)]
PastDate = Annotated[date, AfterValidator(_not_future)]
RoleId = Annotated[str, Field(max_length=100), AfterValidator(_dss_role)]
Visibility = Annotated[dict[str, Level], Field(max_length=len(VISIBILITY_FIELDS)), AfterValidator(_known_visibility)]


# --- experts: input ------------------------------------------------------------------------------


class _Input(InputModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Strength(_Input):
    topic: TopicId
    depth: int = Field(ge=1, le=3)


class DssRoleLevel(_Input):
    role: RoleId
    level: int = Field(ge=1, le=4)


class TrainingRecord(_Input):
    """Completed courses: the online course (オンライン講習) every year, the practical course
    (実践講習) once per three-year cycle. Dates are when each was completed."""

    online: list[PastDate] = Field(default_factory=list, max_length=30)
    practical: list[PastDate] = Field(default_factory=list, max_length=10)

    @field_validator("online", "practical")
    @classmethod
    def _sorted(cls, values: list[date]) -> list[date]:
        return sorted(set(values))


class Programme(_Input):
    """マナビDX Quest record of a DX talent."""

    status: ProgrammeStatus = "participant"
    cohort_year: int | None = Field(default=None, ge=2022, le=2100)
    case_study_completed: bool = False  # ケーススタディ教育プログラム修了
    regional_collaboration: bool = False  # 地域企業協働プログラム参加


class ExpertIn(_Input):
    """A whole expert profile, validated. Field order matters: later validators read earlier fields."""

    kind: ExpertKind
    external_id: optional_text(100) = None
    registration_number: str | None = Field(default=None, max_length=20, validate_default=True)
    name: Annotated[Line, Field(max_length=100)]
    name_kana: optional_text(100) = None
    registration_date: date | None = Field(default=None, validate_default=True)
    renewal_deadline: date | None = Field(default=None, validate_default=True)
    training: TrainingRecord | None = Field(default=None, validate_default=True)
    affiliation: optional_text(200) = None
    contact_email: optional_text(254) = None
    contact_phone: optional_text(30) = None
    prefectures: list[PrefectureCode] = Field(min_length=1, max_length=47)
    onsite: bool = False
    remote: bool = False
    strengths: list[Strength] = Field(default_factory=list, max_length=30)
    skills: list[Tag] = Field(default_factory=list, max_length=50)
    industries: list[Tag] = Field(default_factory=list, max_length=20)
    services: list[ServiceId] = Field(default_factory=list, max_length=len(SERVICE_CATALOGUE))
    qualifications: list[Qualification] = Field(default_factory=list, max_length=20)
    fee_min_yen: int | None = Field(default=None, ge=0, le=10_000_000)
    fee_max_yen: int | None = Field(default=None, ge=0, le=10_000_000, validate_default=True)
    fee_unit: FeeUnit | None = None
    capacity: int = Field(default=1, ge=0, le=50)
    bio: optional_text(2000) = None
    dss_roles: list[DssRoleLevel] = Field(default_factory=list, max_length=5, validate_default=True)
    programme: Programme | None = Field(default=None, validate_default=True)
    availability: Availability | None = None
    visibility: Visibility = Field(default_factory=dict)

    @field_validator("name_kana")
    @classmethod
    def _check_kana(cls, value: str | None) -> str | None:
        return None if value is None else _kana(value)

    @field_validator("external_id", "affiliation")
    @classmethod
    def _check_line(cls, value: str | None) -> str | None:
        return None if value is None else _line(value)

    @field_validator("bio")
    @classmethod
    def _check_bio(cls, value: str | None) -> str | None:
        return None if value is None else _multiline(value)

    @field_validator("contact_email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("contact_phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return None if value is None else normalize_phone(value)

    @field_validator("registration_number", mode="before")
    @classmethod
    def _check_registration_number(cls, value: Any, info: ValidationInfo) -> str | None:
        if isinstance(value, str) and not value.strip():
            value = None
        if isinstance(value, int):
            value = f"{value:06d}"
        kind = info.data.get("kind")
        if kind == "dx_talent":
            if value is not None:
                raise ValueError("DX人材には登録番号を指定できません / DX talent has no registration number")
            return None
        if value is None:
            raise ValueError("登録セキスペの登録番号は必須です / A registration number is required")
        return normalize_registration_number(value)

    @field_validator("registration_date")
    @classmethod
    def _check_registration_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        kind = info.data.get("kind")
        if kind == "dx_talent":
            if value is not None:
                raise ValueError("DX人材には登録年月日を指定できません / DX talent has no registration date")
            return None
        if value is None:
            raise ValueError("登録年月日は必須です / The registration date is required")
        if value < FIRST_REGISTRATION_DATE:
            raise ValueError(
                "登録年月日は2017-04-01以降の日付にしてください / The registration date cannot be before 2017-04-01"
            )
        return _not_future(value)

    @field_validator("renewal_deadline")
    @classmethod
    def _check_renewal_deadline(cls, value: date | None, info: ValidationInfo) -> date | None:
        registered = info.data.get("registration_date")
        if info.data.get("kind") == "dx_talent":
            if value is not None:
                raise ValueError("DX人材には更新期限を指定できません / DX talent has no renewal deadline")
            return None
        if registered is None:
            return value  # the registration date already failed; one error is enough
        if value is None:
            return first_renewal_deadline(registered)
        if value <= registered:
            raise ValueError(
                "更新期限は登録年月日より後の日付にしてください / The renewal deadline must be after the registration date"
            )
        if value > add_years(date.today(), REGISTRATION_YEARS):
            raise ValueError(
                "更新期限は今日から3年以内の日付にしてください / The renewal deadline is at most three years ahead"
            )
        return value

    @field_validator("training")
    @classmethod
    def _check_training(cls, value: TrainingRecord | None, info: ValidationInfo) -> TrainingRecord | None:
        if info.data.get("kind") == "dx_talent":
            if value is not None:
                raise ValueError("DX人材には講習の記録を指定できません / DX talent has no training record")
            return None
        registered = info.data.get("registration_date")
        if value is not None and registered is not None:
            for day in value.online + value.practical:
                if day < registered:
                    raise ValueError(
                        f"講習の受講日（{day}）が登録年月日より前です / "
                        f"A training date ({day}) is before the registration date"
                    )
        return value

    @field_validator("strengths")
    @classmethod
    def _distinct_topics(cls, values: list[Strength]) -> list[Strength]:
        seen = [strength.topic for strength in values]
        if len(seen) != len(set(seen)):
            raise ValueError("同じ分野が重複しています / A topic is listed twice")
        return values

    @field_validator("prefectures", "skills", "industries", "services", "qualifications")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return _unique(values)

    @field_validator("fee_max_yen")
    @classmethod
    def _fee_order(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("fee_min_yen")
        if value is not None and low is not None and value < low:
            raise ValueError("報酬の上限は下限以上にしてください / The maximum fee must not be below the minimum")
        return value

    @field_validator("dss_roles")
    @classmethod
    def _check_roles(cls, values: list[DssRoleLevel], info: ValidationInfo) -> list[DssRoleLevel]:
        roles = [value.role for value in values]
        if len(roles) != len(set(roles)):
            raise ValueError("同じ役割が重複しています / A role is listed twice")
        if info.data.get("kind") == "dx_talent" and not values:
            raise ValueError(
                "DX人材はデジタルスキル標準の役割を1つ以上指定してください / DX talent needs at least one role"
            )
        return values

    @field_validator("programme")
    @classmethod
    def _check_programme(cls, value: Programme | None, info: ValidationInfo) -> Programme | None:
        if info.data.get("kind") == "sekisupe" and value is not None:
            raise ValueError(
                "マナビDX Quest の記録はDX人材のみ指定できます / The programme record is for DX talent only"
            )
        return value


OrganizationId = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_line)]


class ExpertCreate(ExpertIn):
    # Admin and service callers create entries for others (or unowned entries, as an import does).
    owner_user_id: optional_text(64) = None
    # Conflicts of interest (never public, only the expert and admins read them; the scorer never ranks the
    # expert for these SMEs) and the SME that employs the expert, if any. Not part of the profile document:
    # the CSV import neither carries nor resets them.
    conflicted_organization_ids: list[OrganizationId] = Field(default_factory=list, max_length=100)
    employer_organization_id: optional_text(64) = None

    @field_validator("conflicted_organization_ids")
    @classmethod
    def _unique_conflicts(cls, values: list[str]) -> list[str]:
        return sorted(set(values))


class ExpertPatch(_Input):
    """PATCH /experts/{id}: any subset of the profile fields (and, for admins, the owner). Each field is
    checked on its own here; the rules between fields (kind, dates, training) are checked on the merged
    whole, validated as ExpertIn. ``visibility`` merges with the current settings."""

    kind: ExpertKind | None = None  # accepted only when it is the entry's kind (a kind never changes)
    external_id: optional_text(100) = None
    # A number as sent by a spreadsheet (12345) is allowed as in ExpertIn; the length limit is for text only.
    registration_number: Annotated[str, Field(max_length=20)] | int | None = None
    name: Annotated[Line, Field(max_length=100)] | None = None
    name_kana: optional_text(100) = None
    registration_date: date | None = None
    renewal_deadline: date | None = None
    training: TrainingRecord | None = None
    affiliation: optional_text(200) = None
    contact_email: optional_text(254) = None
    contact_phone: optional_text(30) = None
    prefectures: list[PrefectureCode] | None = Field(default=None, max_length=47)
    onsite: bool | None = None
    remote: bool | None = None
    strengths: list[Strength] | None = Field(default=None, max_length=30)
    skills: list[Tag] | None = Field(default=None, max_length=50)
    industries: list[Tag] | None = Field(default=None, max_length=20)
    services: list[ServiceId] | None = Field(default=None, max_length=len(SERVICE_CATALOGUE))
    qualifications: list[Qualification] | None = Field(default=None, max_length=20)
    fee_min_yen: int | None = Field(default=None, ge=0, le=10_000_000)
    fee_max_yen: int | None = Field(default=None, ge=0, le=10_000_000)
    fee_unit: FeeUnit | None = None
    capacity: int | None = Field(default=None, ge=0, le=50)
    bio: optional_text(2000) = None
    dss_roles: list[DssRoleLevel] | None = Field(default=None, max_length=5)
    programme: Programme | None = None
    availability: Availability | None = None
    visibility: Visibility | None = None
    owner_user_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    conflicted_organization_ids: list[OrganizationId] | None = Field(default=None, max_length=100)
    employer_organization_id: optional_text(64) = None

    @field_validator("conflicted_organization_ids")
    @classmethod
    def _unique_conflicts(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else sorted(set(values))


class VisibilityUpdate(_Input):
    """PUT /experts/{id}/visibility: the whole map; a field left out returns to its default."""

    visibility: Visibility


# --- organisations: input ------------------------------------------------------------------------


class OrganizationIn(_Input):
    name: Annotated[Line, Field(max_length=200)]
    prefecture: PrefectureCode
    industry: optional_text(100) = None
    employees: int | None = Field(default=None, ge=0, le=1_000_000)
    digitalization_stage: int | None = Field(default=None, ge=1, le=4)
    security_action: SecurityAction = "none"
    scs_target: ScsTarget = "none"

    @field_validator("industry")
    @classmethod
    def _industry(cls, value: str | None) -> str | None:
        return None if value is None else normalize_tag(value)


class OrganizationCreate(OrganizationIn):
    # Users who act for the SME besides the caller (an SME caller always becomes a member).
    member_user_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


class OrganizationPatch(_Input):
    name: Annotated[Line, Field(max_length=200)] | None = None
    prefecture: PrefectureCode | None = None
    industry: optional_text(100) = None
    employees: int | None = Field(default=None, ge=0, le=1_000_000)
    digitalization_stage: int | None = Field(default=None, ge=1, le=4)
    security_action: SecurityAction | None = None
    scs_target: ScsTarget | None = None


class MemberAdd(_Input):
    user_id: str = Field(min_length=1, max_length=64)


# --- trust (issue 9): verification, corrections -------------------------------------------------

# Regulated data: written only by the operator (an admin) or the import; an expert asks for a correction.
RegulatedField = Literal["registration_number", "registration_date", "renewal_deadline", "training"]
REGULATED_FIELDS: tuple[str, ...] = ("registration_number", "registration_date", "renewal_deadline", "training")
Verification = Literal["pending", "verified", "rejected"]


class Rejection(_Input):
    """Why an admin refuses a claim or a correction (the expert is told)."""

    reason: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_multiline)]


class CorrectionCreate(_Input):
    """POST /experts/{id}/corrections: the field, the value the expert says is right, and why."""

    field: RegulatedField
    # A registration number or a date as text, or a training record ({"online": [...], "practical": [...]}).
    proposed_value: Annotated[str, Field(max_length=20)] | TrainingRecord | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_multiline)]


# --- responses -----------------------------------------------------------------------------------

# Times as the service has always written them (ISO 8601 with +00:00), not pydantic's "Z" form.
Timestamp = Annotated[datetime, PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json")]


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpertStatus(_Output):
    """Why the entry is (in)active: shown to brokers, the expert and admins."""

    reason_code: str | None
    reason_ja: str | None
    reason_en: str | None
    changed_at: Timestamp | None
    last_confirmed_at: Timestamp | None
    confirmation_due_on: date | None


class ExpertView(_Output):
    """An entry as one caller may see it (visibility.expert_view). Fields the caller may not see are not
    set, and the routes leave unset fields out of the JSON: hidden means absent, never null."""

    id: str
    kind: ExpertKind
    name: str
    registration_number: str | None = None
    registration_date: date | None = None
    training: dict[str, list[str]] | None = None
    name_kana: str | None = None
    renewal_deadline: date | None = None
    affiliation: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    prefectures: list[str] | None = None
    onsite: bool | None = None
    remote: bool | None = None
    strengths: list[dict[str, Any]] | None = None
    skills: list[str] | None = None
    industries: list[str] | None = None
    services: list[str] | None = None
    qualifications: list[str] | None = None
    fee_min_yen: int | None = None
    fee_max_yen: int | None = None
    fee_unit: str | None = None
    capacity: int | None = None
    bio: str | None = None
    dss_roles: list[dict[str, Any]] | None = None
    programme: dict[str, Any] | None = None
    availability: str | None = None
    active: bool
    status: ExpertStatus | None = None
    owner_user_id: str | None = None
    external_id: str | None = None
    visibility: dict[str, str] | None = None
    conflicted_organization_ids: list[str] | None = None
    employer_organization_id: str | None = None
    created_at: Timestamp | None = None
    version: int
    updated_at: Timestamp | None
    # After a confirmation that does not reactivate the entry: why it stays inactive.
    message_ja: str | None = None
    message_en: str | None = None
    # Verification: "verified" for every entry others may read; the owner and admins also see a pending or
    # rejected one, with the reason of a rejection.
    verification: Verification | None = None
    verification_reason: str | None = None


class OrganizationRead(_Output):
    id: str
    name: str
    prefecture: str
    prefecture_name: str
    industry: str | None
    employees: int | None
    digitalization_stage: int | None
    security_action: str
    scs_target: str
    member_user_ids: list[str]
    version: int
    created_at: Timestamp | None
    updated_at: Timestamp | None


class RowErrorRead(_Output):
    line: int
    field: str
    column: str
    message_ja: str
    message_en: str
    key: str | None = None


class ImportReportRead(_Output):
    """What an import did: counts, the refused rows (line, field, reason) and ignored columns."""

    encoding: str
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    errors: list[RowErrorRead]
    errors_truncated: int
    warnings: list[str]
    seconds: float


class FreshnessSummaryRead(_Output):
    """What a freshness run did, by reason."""

    as_of: str
    checked: int
    deactivated: dict[str, int]
    deactivated_total: int
    reactivated: int
    reminders: dict[str, int]
    reminders_total: int


class ClaimRead(_Output):
    """A contested claim: an account asked for a registration number an entry already holds (admins)."""

    id: str
    registration_number: str
    claimant_user_id: str
    expert_id: str
    held_by_user_id: str | None
    held_entry_verification: str | None = None
    submitted: dict[str, Any]
    status: str
    decision_reason: str | None
    decided_by: str | None
    decided_at: Timestamp | None
    created_at: Timestamp


class CorrectionRead(_Output):
    id: str
    expert_id: str
    requested_by: str
    field: str
    proposed_value: Any
    current_value: Any = None
    reason: str
    status: str
    decision_reason: str | None
    decided_by: str | None
    decided_at: Timestamp | None
    created_at: Timestamp


class InvitationRead(_Output):
    """An invitation to act for an SME organisation; the invited user sees only the organisation's name."""

    id: str
    organization_id: str
    organization_name: str
    user_id: str
    invited_by: str
    status: str
    created_at: Timestamp
    decided_at: Timestamp | None


class PublishedExpertRead(BaseModel):
    """An entry as the search index should hold it (GET /admin/experts/published, for ``tsunagu search
    reindex``): exactly the data of its latest ``profiles.expert.published`` event, and that event's version."""

    version: int
    data: ExpertPublicV1

"""Inputs of the profiles service and how they are normalised.

The same models validate the JSON API and every row of a CSV import, so both paths accept and refuse
exactly the same things. Validators raise ``ValueError("日本語 / English")``; the kernel's error handler
splits that into the two languages and names the field (``strengths.0.topic``, ``fee_max_yen`` ...).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from tsunagu.validation import InputModel
from tsunagu.reference import dss_roles, prefecture_code, topics

ExpertKind = Literal["sekisupe", "dx_talent"]
Level = Literal["public", "brokers", "private"]
FeeUnit = Literal["hour", "day", "engagement"]
Availability = Literal["available", "limited", "unavailable"]
ProgrammeStatus = Literal["participant", "graduate"]
SecurityAction = Literal["none", "one_star", "two_star"]
ScsTarget = Literal["none", "scs_3", "scs_4"]

# The first 登録セキスペ were registered on 2017-04-01 (情報処理の促進に関する法律, 2016 amendment).
FIRST_REGISTRATION_DATE = date(2017, 4, 1)
REGISTRATION_YEARS = 3

# Services an expert can offer (id -> Japanese label). Labels are accepted on input as well as ids.
SERVICE_CATALOGUE: dict[str, str] = {
    "management_guidance": "マネジメント指導",
    "policy_drafting": "規程・基本方針の策定",
    "self_diagnosis_support": "自社診断の支援",
    "security_action_support": "SECURITY ACTION 宣言支援",
    "scs_3": "SCS★3 対応",
    "scs_4": "SCS★4 対応",
    "incident_first_response": "インシデント初動",
    "employee_training": "従業員教育",
    "vulnerability_assessment": "脆弱性診断",
    "cloud_review": "クラウド利用の点検",
    "otasuketai_selection": "お助け隊サービスの選定支援",
    "bcp_planning": "事業継続計画（BCP）策定支援",
    "dx_planning": "DX計画の策定支援",
    "data_analysis": "データ分析・活用支援",
    "system_selection": "ITツール・システム選定支援",
}

# Which profile fields each visibility setting governs. The mandatory registration data
# (MANDATORY_PUBLIC) has no setting: the law makes it public.
VISIBILITY_FIELDS: dict[str, tuple[str, ...]] = {
    "name_kana": ("name_kana",),
    "renewal_deadline": ("renewal_deadline",),
    "affiliation": ("affiliation",),
    "contact_email": ("contact_email",),
    "contact_phone": ("contact_phone",),
    "prefectures": ("prefectures", "onsite", "remote"),
    "strengths": ("strengths",),
    "skills": ("skills",),
    "industries": ("industries",),
    "services": ("services",),
    "qualifications": ("qualifications",),
    "fee": ("fee_min_yen", "fee_max_yen", "fee_unit"),
    "capacity": ("capacity",),
    "bio": ("bio",),
    "dss_roles": ("dss_roles",),
    "programme": ("programme",),
    "availability": ("availability",),
}
MANDATORY_PUBLIC: tuple[str, ...] = ("kind", "registration_number", "name", "registration_date", "training")
DEFAULT_VISIBILITY: dict[str, Level] = {
    key: "public" for key in VISIBILITY_FIELDS
} | {"contact_email": "private", "contact_phone": "private", "fee": "brokers", "capacity": "brokers", "availability": "brokers"}


# --- normalisers -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_KANA = re.compile(r"^[\u3041-\u3096\u309d\u309e\u30a1-\u30fa\u30fc-\u30fe・ ]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9\-() ]{6,22}[0-9]$")
_REGISTRATION_NUMBER = re.compile(r"^[0-9]{6}$")


def normalize_tag(value: str) -> str:
    """Skills and industries: NFKC, lower case, single spaces, so AWS = ＡＷＳ = ' aws '."""
    return " ".join(unicodedata.normalize("NFKC", value).lower().split())


def clean_line(value: str) -> str:
    """One-line text (names, affiliation): NFKC (half-width kana, full-width digits) and single spaces."""
    return " ".join(unicodedata.normalize("NFKC", value).split())


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("制御文字は使えません / Control characters are not allowed")
    return value


def _line(value: str) -> str:
    value = clean_line(_no_control(value))
    if not value:
        raise ValueError("空にはできません / Must not be empty")
    return value


def _optional_line(value: Any) -> Any:
    """'' and whitespace mean 'none' for optional text (forms and CSV cells send them)."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _multiline(value: str) -> str:
    value = _no_control(value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    return value or None  # type: ignore[return-value]


def _kana(value: str) -> str:
    value = _line(value)
    if not _KANA.match(value):
        raise ValueError("ひらがなかカタカナで入力してください / Use hiragana or katakana")
    return value


def normalize_registration_number(value: str) -> str:
    """'第０１２３４５号', ' 012345 ' -> '012345'."""
    text = unicodedata.normalize("NFKC", str(value)).strip().removeprefix("第").removesuffix("号").strip()
    if not _REGISTRATION_NUMBER.match(text) or text == "000000":
        raise ValueError(
            "登録番号は6桁の数字で入力してください（例: 012345） / "
            "The registration number is six digits (e.g. 012345)"
        )
    return text


def _prefecture(value: Any) -> str:
    code = prefecture_code(value) if isinstance(value, (str, int)) else None
    if code is None:
        raise ValueError(f"都道府県「{value}」が見つかりません / Unknown prefecture: {value}")
    return code


def _topic(value: str) -> str:
    value = value.strip()
    if value not in topics():
        raise ValueError(f"分野「{value}」は分野一覧にありません / Unknown topic: {value}")
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


def _email(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).strip()
    if not _EMAIL.match(value):
        raise ValueError("メールアドレスの形式が正しくありません / Not a valid e-mail address")
    return value


def _phone(value: str) -> str:
    value = unicodedata.normalize("NFKC", value).strip()
    if not _PHONE.match(value):
        raise ValueError("電話番号の形式が正しくありません（例: 03-1234-5678） / Not a valid phone number")
    return value


def _tag(value: str) -> str:
    value = normalize_tag(_no_control(value))
    if not value:
        raise ValueError("空のタグは使えません / Empty tags are not allowed")
    return value


def _unique(values: list) -> list:
    return list(dict.fromkeys(values))


def _not_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError("未来の日付は指定できません / The date may not be in the future")
    return value


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def first_renewal_deadline(registration_date: date) -> date:
    """Registration is valid for three years: registered 2024-04-01 -> renew by 2027-03-31."""
    from datetime import timedelta

    return add_years(registration_date, REGISTRATION_YEARS) - timedelta(days=1)


Line = Annotated[str, AfterValidator(_line)]
def optional_text(max_length: int) -> Any:
    """Optional text up to max_length characters; '' and whitespace mean none."""
    return Annotated[Annotated[str, StringConstraints(max_length=max_length)] | None, BeforeValidator(_optional_line)]


Prefecture = Annotated[str, AfterValidator(_prefecture)]
Tag = Annotated[str, Field(max_length=50), AfterValidator(_tag)]
Qualification = Annotated[str, Field(max_length=100), AfterValidator(_line)]
ServiceId = Annotated[str, Field(max_length=100), AfterValidator(_service)]
TopicId = Annotated[str, Field(max_length=100), AfterValidator(_topic)]
PastDate = Annotated[date, AfterValidator(_not_future)]
RoleId = Annotated[str, Field(max_length=100), AfterValidator(_dss_role)]


# --- experts -----------------------------------------------------------------------------------


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
    prefectures: list[Prefecture] = Field(min_length=1, max_length=47)
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
    visibility: dict[str, Level] = Field(default_factory=dict, max_length=len(VISIBILITY_FIELDS))

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
        return None if value is None else _email(value)

    @field_validator("contact_phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        return None if value is None else _phone(value)

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

    @field_validator("visibility")
    @classmethod
    def _check_visibility(cls, values: dict[str, Level]) -> dict[str, Level]:
        for key in values:
            if key in MANDATORY_PUBLIC:
                raise ValueError(
                    f"「{key}」は法定の公開項目のため非公開にできません / {key} is mandatory public registration data"
                )
            if key not in VISIBILITY_FIELDS:
                raise ValueError(f"公開設定の項目「{key}」はありません / Unknown visibility field: {key}")
        return values


class ExpertCreate(ExpertIn):
    # Admin and service callers create entries for others (or unowned entries, as an import does).
    owner_user_id: optional_text(64) = None


# The partial update: any subset of the profile fields; the merged result is validated as ExpertIn.
PATCHABLE_FIELDS = tuple(name for name in ExpertIn.model_fields if name != "kind") + ("owner_user_id",)


class VisibilityUpdate(_Input):
    """PUT /experts/{id}/visibility: the whole map; a field left out returns to its default."""

    visibility: dict[str, Level]

    @field_validator("visibility")
    @classmethod
    def _check(cls, values: dict[str, Level]) -> dict[str, Level]:
        return ExpertIn._check_visibility(values)


# --- organisations -----------------------------------------------------------------------------


class OrganizationIn(_Input):
    name: Annotated[Line, Field(max_length=200)]
    prefecture: Prefecture
    industry: optional_text(100) = None
    employees: int | None = Field(default=None, ge=0, le=1_000_000)
    digitalization_stage: int | None = Field(default=None, ge=1, le=4)
    security_action: SecurityAction = "none"
    scs_target: ScsTarget = "none"

    @field_validator("industry")
    @classmethod
    def _industry(cls, value: str | None) -> str | None:
        return None if value is None else _tag(value)


class OrganizationCreate(OrganizationIn):
    # Users who act for the SME besides the caller (an SME caller always becomes a member).
    member_user_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


class OrganizationPatch(_Input):
    name: Annotated[Line, Field(max_length=200)] | None = None
    prefecture: Prefecture | None = None
    industry: optional_text(100) = None
    employees: int | None = Field(default=None, ge=0, le=1_000_000)
    digitalization_stage: int | None = Field(default=None, ge=1, le=4)
    security_action: SecurityAction | None = None
    scs_target: ScsTarget | None = None


class MemberAdd(_Input):
    user_id: str = Field(min_length=1, max_length=64)

"""Request and response bodies of the matching API (validated, with bilingual messages).

Prefectures, topics and skills go through the kernel's shared types (``tsunagu.types``), so a request's
skill "Cloud  Security" is the same tag as a profile's "cloud security" and the scorer matches them.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from tsunagu.contracts import HubProjectChangedV1
from tsunagu.errors import validation_error
from tsunagu.reference import dss_roles, self_diagnosis_questions
from tsunagu.types import PrefectureCode, Tag, TopicId
from tsunagu.validation import InputModel

DiagnosisAnswer = Literal["yes", "partly", "no", "unknown"]


class RequestCreate(InputModel):
    organization_id: str | None = Field(default=None, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    prefecture: PrefectureCode
    delivery: Literal["onsite", "remote", "either"] = "either"
    topics: list[TopicId] = Field(default_factory=list, max_length=20)
    self_diagnosis: dict[str, DiagnosisAnswer] = Field(default_factory=dict, max_length=25)
    skills: list[Tag] = Field(default_factory=list, max_length=20)
    industry: Tag | None = (
        None  # the same tag rule as a profile's industries, so "Manufacturing" matches "manufacturing"
    )
    budget_yen_max: int | None = Field(default=None, ge=0, le=100_000_000)
    urgency: Literal["low", "normal", "high"] = "normal"
    # Saved as a draft (no ranking, nobody told) until ``POST /requests/{id}/submit``.
    draft: bool = False

    @field_validator("topics", "skills", mode="wrap")
    @classmethod
    def _one_list_without_repeats(cls, values: Any, handler: ValidatorFunctionWrapHandler) -> list[str]:
        """The list is the field a client names: an element's error is reported on "topics" / "skills"
        (not "topics.0"), and an entry repeated (after normalisation) counts once."""
        try:
            return list(dict.fromkeys(handler(values)))
        except ValidationError as error:
            if any(not detail["loc"] for detail in error.errors()):
                raise  # the list itself is wrong (not a list, too long): pydantic's error names the field
            reasons = validation_error(error.errors()).fields  # each element's reason, in both languages
            ja = "、".join(dict.fromkeys(reason["message_ja"] for reason in reasons))
            en = "; ".join(dict.fromkeys(reason["message_en"] for reason in reasons))
            raise ValueError(f"{ja} / {en}") from error

    @field_validator("self_diagnosis")
    @classmethod
    def _known_questions(cls, answers: dict[str, str]) -> dict[str, str]:
        questions = self_diagnosis_questions()
        bad = [key for key in answers if not key.isdigit() or int(key) not in questions]
        if bad:
            raise ValueError(
                f"自社診断の設問番号は1〜25です（{', '.join(bad)}） / Self-diagnosis questions are numbered 1-25"
            )
        return answers

    def all_topics(self) -> list[str]:
        """Explicit topics, then those whose self-diagnosis answer was not a clear yes."""
        questions = self_diagnosis_questions()
        derived = [
            questions[int(no)].topic
            for no, answer in sorted(self.self_diagnosis.items(), key=lambda kv: int(kv[0]))
            if answer != "yes"
        ]
        return list(dict.fromkeys([*self.topics, *derived]))


class RequestRead(BaseModel):
    id: str
    organization_id: str | None
    created_by: str
    title: str
    description: str
    prefecture: str
    prefecture_name: str
    delivery: str
    topics: list[str]
    explicit_topics: list[str]
    self_diagnosis: dict[str, str]
    skills: list[str]
    industry: str | None
    budget_yen_max: int | None
    urgency: str
    status: str
    created_at: datetime
    updated_at: datetime


class RankingEntry(BaseModel):
    rank: int
    expert_id: str
    display_name: str
    score: float
    contributions: dict[str, float]
    reason_ja: str
    reason_en: str
    weights_version: str


class RankingRead(BaseModel):
    request_id: str
    status: Literal["pending", "ranked"]
    ranking_id: str | None = None
    weights_version: str | None = None
    computed_at: datetime | None = None
    candidate_count: int = 0
    entries: list[RankingEntry] = Field(default_factory=list)
    message_ja: str | None = None
    message_en: str | None = None

    @classmethod
    def pending(cls, request_id: str) -> RankingRead:
        return cls(
            request_id=request_id,
            status="pending",
            message_ja="候補者を選定中です。しばらくしてから再度ご確認ください",
            message_en="The ranking is being computed; check again shortly",
        )


class RequestPatch(InputModel):
    """An edit of a draft or open request: only the fields sent change (``exclude_unset``); the merged
    request is validated again as a whole (a request must keep at least one topic)."""

    title: str = Field(default=None, min_length=1, max_length=200)  # type: ignore[assignment]
    description: str = Field(default=None, max_length=4000)  # type: ignore[assignment]
    prefecture: PrefectureCode = None  # type: ignore[assignment]
    delivery: Literal["onsite", "remote", "either"] = None  # type: ignore[assignment]
    topics: list[TopicId] = Field(default=None, max_length=20)  # type: ignore[assignment]
    self_diagnosis: dict[str, DiagnosisAnswer] = Field(default=None, max_length=25)  # type: ignore[assignment]
    skills: list[Tag] = Field(default=None, max_length=20)  # type: ignore[assignment]
    industry: Tag | None = (
        None  # the same tag rule as a profile's industries, so "Manufacturing" matches "manufacturing"
    )
    budget_yen_max: int | None = Field(default=None, ge=0, le=100_000_000)
    urgency: Literal["low", "normal", "high"] = None  # type: ignore[assignment]

    _lists = field_validator("topics", "skills", mode="wrap")(RequestCreate._one_list_without_repeats.__func__)  # type: ignore[attr-defined]
    _questions = field_validator("self_diagnosis")(RequestCreate._known_questions.__func__)  # type: ignore[attr-defined]


Reason = Field(min_length=1, max_length=2000)


class ReasonBody(InputModel):
    reason: str = Reason


class OptionalReasonBody(InputModel):
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class ProposalCreate(InputModel):
    expert_id: str = Field(min_length=1, max_length=64)
    message: str = Field(default="", max_length=2000)


class RatingCreate(InputModel):
    stars: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=2000)


class RequestSummary(BaseModel):
    """What a proposed expert reads of the request they are asked to take (no ranking, no other experts)."""

    id: str
    title: str
    description: str
    prefecture: str
    prefecture_name: str
    delivery: str
    topics: list[str]
    status: str


class ProposalRead(BaseModel):
    id: str
    request_id: str
    expert_id: str
    expert_name: str
    broker_id: str
    message: str
    state: str
    state_label_ja: str
    reason: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    engagement_id: str | None = None
    request: RequestSummary


class RatingRead(BaseModel):
    side: Literal["sme", "expert"]
    stars: int
    comment: str
    created_at: datetime


class EngagementRead(BaseModel):
    id: str
    request_id: str
    proposal_id: str
    expert_id: str
    expert_name: str
    organization_id: str | None
    state: str
    state_label_ja: str
    reason: str | None
    fiscal_year: int
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    ratings: list[RatingRead] = Field(default_factory=list)
    request: RequestSummary


class TransitionRead(BaseModel):
    """One line of a request's history: who moved what from which state to which, when and why."""

    object_type: Literal["request", "proposal", "engagement"]
    object_id: str
    actor_id: str
    actor_role: str
    from_state: str | None
    to_state: str
    to_state_label_ja: str
    reason: str | None
    at: datetime


# --- 相談会 (consultation days) and マナビDX Quest hub projects (issue 11) --------------------------------

TimeOfDay = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["10:00"])]


class SlotIn(InputModel):
    start: TimeOfDay
    end: TimeOfDay

    @model_validator(mode="after")
    def _ends_after_start(self) -> SlotIn:
        if self.end <= self.start:
            raise ValueError("終了時刻は開始時刻より後にしてください / A slot must end after it starts")
        return self


class SessionExpertIn(InputModel):
    expert_id: str = Field(min_length=1, max_length=64)
    max_meetings: int = Field(default=2, ge=1, le=20)
    # The slots (by index) the expert is there; absent: all day.
    slots: list[int] | None = Field(default=None, max_length=20)


class SessionCreate(InputModel):
    title: str = Field(min_length=1, max_length=200)
    date: date
    venue_prefecture: PrefectureCode
    venue: str = Field(default="", max_length=200)
    slots: list[SlotIn] = Field(min_length=1, max_length=20)
    experts: list[SessionExpertIn] = Field(min_length=1, max_length=200)
    # How many meetings one SME may get (at least one whenever feasible; more only if places are left).
    max_meetings_per_sme: int = Field(default=1, ge=1, le=5)

    @field_validator("slots")
    @classmethod
    def _slots_in_order(cls, slots: list[SlotIn]) -> list[SlotIn]:
        for before, after in itertools.pairwise(slots):
            if after.start < before.end:
                raise ValueError(
                    "時間帯は重ならないよう時刻順に並べてください / Slots must be in order and not overlap"
                )
        return slots

    @field_validator("experts")
    @classmethod
    def _experts_once_and_slots_known(
        cls, experts: list[SessionExpertIn], info: ValidationInfo
    ) -> list[SessionExpertIn]:
        ids = [expert.expert_id for expert in experts]
        if len(set(ids)) != len(ids):
            raise ValueError("同じ専門家が2回指定されています / An expert is listed twice")
        slot_count = len(info.data.get("slots") or [])
        for expert in experts:
            if expert.slots is not None and any(s < 0 or s >= slot_count for s in expert.slots):
                raise ValueError("専門家の時間帯の番号が範囲外です / An expert's slot index is out of range")
        return experts


class SessionRegistrationCreate(InputModel):
    """An SME registers for a 相談会 (on site): topics and/or the self-diagnosis answers, as in a request."""

    organization_id: str | None = Field(default=None, max_length=64)
    topics: list[TopicId] = Field(default_factory=list, max_length=20)
    self_diagnosis: dict[str, DiagnosisAnswer] = Field(default_factory=dict, max_length=25)
    note: str = Field(default="", max_length=2000)

    _lists = field_validator("topics", mode="wrap")(RequestCreate._one_list_without_repeats.__func__)  # type: ignore[attr-defined]
    _questions = field_validator("self_diagnosis")(RequestCreate._known_questions.__func__)  # type: ignore[attr-defined]
    all_topics = RequestCreate.all_topics  # one rule for what the self-diagnosis points to


class AssignmentCreate(InputModel):
    """``publish`` (default): store the plan and tell those affected; false: only show it."""

    publish: bool = True


class SlotRead(BaseModel):
    index: int
    start: str
    end: str


class SessionExpertRead(BaseModel):
    expert_id: str
    display_name: str
    max_meetings: int
    slots: list[int] | None = None


class MeetingRead(BaseModel):
    slot: int
    start: str
    end: str
    expert_id: str
    expert_name: str
    registration_id: str
    organization_name: str | None = None
    score: float
    reason_ja: str
    reason_en: str = ""


class PairScoreRead(BaseModel):
    registration_id: str
    expert_id: str
    score: float


class UnservedRead(BaseModel):
    registration_id: str
    reason_ja: str
    reason_en: str = ""


class AssignmentRead(BaseModel):
    """The solved plan: meetings (slots by index), the objective (the sum of the chosen pairs' scores), every
    eligible pair's score so anyone can check the optimum, and why anyone is left without a meeting."""

    session_id: str
    status: Literal["optimal", "feasible"]
    published: bool
    meetings: list[MeetingRead]
    objective: float
    served: int
    registrations: int
    pair_scores: list[PairScoreRead]
    unserved: list[UnservedRead]
    reasons_ja: list[str]
    reasons_en: list[str] = Field(default_factory=list)
    solve_seconds: float


class SessionRead(BaseModel):
    """A 相談会 as the reader may see it: staff (the covering broker, hub staff, admins) see the invited
    experts, the registrations' count and every meeting; an invited expert and a registered SME their own
    meetings; other SMEs only the day, the place and the slots (to register)."""

    id: str
    title: str
    date: date
    venue_prefecture: str
    prefecture_name: str
    venue: str
    slots: list[SlotRead]
    max_meetings_per_sme: int
    state: str
    broker_id: str | None = None
    experts: list[SessionExpertRead] = Field(default_factory=list)
    registration_count: int | None = None
    my_registration_id: str | None = None
    meetings: list[MeetingRead] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class SessionRegistrationRead(BaseModel):
    id: str
    session_id: str
    sme_user_id: str
    organization_id: str | None
    topics: list[str]
    explicit_topics: list[str]
    self_diagnosis: dict[str, str]
    note: str
    created_at: datetime


class RequirementIn(InputModel):
    role: str = Field(min_length=1, max_length=50)
    level: int = Field(default=2, ge=1, le=4)

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in dss_roles():
            raise ValueError(f"デジタルスキル標準のロール「{role}」は一覧にありません / Unknown DSS role: {role}")
        return role


class ProjectCreate(InputModel):
    title: str = Field(min_length=1, max_length=200)
    summary: str = Field(default="", max_length=4000)
    organization_id: str | None = Field(default=None, max_length=64)
    sme_name: str | None = Field(default=None, min_length=1, max_length=200)
    sme_name_public: bool = False
    hub_organization_id: str | None = Field(default=None, max_length=64)
    topics: list[TopicId] = Field(min_length=1, max_length=10)
    requirements: list[RequirementIn] = Field(default_factory=list, max_length=10)
    prefecture: PrefectureCode
    remote_ok: bool = False
    start_on: date | None = None
    weeks: int = Field(default=8, ge=1, le=52)
    team_size: int = Field(default=5, ge=1, le=10)
    cohort: str = Field(default="", max_length=20)

    _lists = field_validator("topics", mode="wrap")(RequestCreate._one_list_without_repeats.__func__)  # type: ignore[attr-defined]

    @field_validator("requirements")
    @classmethod
    def _one_level_per_role(cls, requirements: list[RequirementIn]) -> list[RequirementIn]:
        roles = [requirement.role for requirement in requirements]
        if len(set(roles)) != len(roles):
            raise ValueError("同じロールが2回指定されています / A role is listed twice")
        return requirements


class InterestCreate(InputModel):
    """A learner states interest; ``learner_id`` names their DX人材 profile when they own more than one."""

    learner_id: str | None = Field(default=None, min_length=1, max_length=64)
    note: str = Field(default="", max_length=1000)


class PinIn(InputModel):
    project_id: str = Field(min_length=1, max_length=64)
    learner_id: str = Field(min_length=1, max_length=64)


class TeamsCreate(InputModel):
    """Form teams for these projects, or for every open project of a cohort in the caller's prefectures;
    pins and exclusions are kept on the projects, so solving again keeps them."""

    project_ids: list[str] = Field(default_factory=list, max_length=500)
    cohort: str | None = Field(default=None, max_length=20)
    pins: list[PinIn] = Field(default_factory=list, max_length=500)
    exclusions: list[PinIn] = Field(default_factory=list, max_length=2000)


class ProjectMemberRead(BaseModel):
    learner_id: str
    name: str
    role: Literal["member", "mentor"]
    state: str
    fit: int
    dss_roles: dict[str, int] = Field(default_factory=dict)
    reason_ja: str
    reason_en: str


class ProjectRead(BaseModel):
    id: str
    title: str
    summary: str
    organization_id: str | None
    sme_name: str | None  # shown only when the SME allowed it, or to staff
    hub_organization_id: str | None
    topics: list[str]
    requirements: list[dict[str, Any]]
    prefecture: str
    prefecture_name: str
    remote_ok: bool
    start_on: date | None
    weeks: int
    team_size: int
    cohort: str
    state: str
    pins: list[str] = Field(default_factory=list)
    exclusions: list[str] = Field(default_factory=list)
    interest_count: int = 0
    members: list[ProjectMemberRead] = Field(default_factory=list)
    uncovered_ja: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class TeamsRead(BaseModel):
    status: Literal["optimal", "feasible"]
    objective: int
    solve_seconds: float
    projects: list[ProjectRead]


class RequestSearchSource(BaseModel):
    """A request as the search service's requests index should hold it (``tsunagu search reindex``): the
    fields its latest event carries for the index (RequestChangedV1 without the people concerned), and
    that event's version."""

    version: int
    request_id: str
    title: str
    summary: str
    prefecture: str
    delivery: str
    topics: list[str]
    skills: list[str]
    industry: str | None
    status: str
    sme_name: str | None = None
    updated_at: datetime


class ProjectSearchSource(BaseModel):
    """A hub project as the projects index should hold it: its latest event's data (no members, no actor)
    and version."""

    version: int
    data: HubProjectChangedV1

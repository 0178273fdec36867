"""Request and response bodies of the matching API (validated, with bilingual messages)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from tsunagu.reference import prefecture_code, self_diagnosis_questions, topics
from tsunagu.validation import InputModel

DiagnosisAnswer = Literal["yes", "partly", "no", "unknown"]


def _normalise_tag(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


class RequestCreate(InputModel):

    organization_id: str | None = Field(default=None, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    prefecture: str = Field(max_length=20)
    delivery: Literal["onsite", "remote", "either"] = "either"
    topics: list[str] = Field(default_factory=list, max_length=20)
    self_diagnosis: dict[str, DiagnosisAnswer] = Field(default_factory=dict, max_length=25)
    skills: list[str] = Field(default_factory=list, max_length=20)
    industry: str | None = Field(default=None, max_length=100)
    budget_yen_max: int | None = Field(default=None, ge=0, le=100_000_000)
    urgency: Literal["low", "normal", "high"] = "normal"

    @field_validator("prefecture")
    @classmethod
    def _known_prefecture(cls, value: str) -> str:
        code = prefecture_code(value)
        if code is None:
            raise ValueError(f"都道府県「{value}」は存在しません / Unknown prefecture: {value}")
        return code

    @field_validator("topics")
    @classmethod
    def _known_topics(cls, values: list[str]) -> list[str]:
        unknown = [value for value in values if value not in topics()]
        if unknown:
            raise ValueError(f"不明な相談テーマです: {', '.join(unknown)} / Unknown topics: {', '.join(unknown)}")
        return list(dict.fromkeys(values))

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

    @field_validator("skills")
    @classmethod
    def _normalise_skills(cls, values: list[str]) -> list[str]:
        cleaned = [_normalise_tag(value) for value in values]
        if any(not value or len(value) > 50 for value in cleaned):
            raise ValueError("スキルは1〜50文字で指定してください / Each skill must be 1-50 characters")
        return list(dict.fromkeys(cleaned))

    def all_topics(self) -> list[str]:
        """Explicit topics, then those whose self-diagnosis answer was not a clear yes."""
        questions = self_diagnosis_questions()
        derived = [questions[int(no)].topic for no, answer in sorted(self.self_diagnosis.items(), key=lambda kv: int(kv[0])) if answer != "yes"]
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
    def pending(cls, request_id: str) -> "RankingRead":
        return cls(
            request_id=request_id,
            status="pending",
            message_ja="候補者を選定中です。しばらくしてから再度ご確認ください",
            message_en="The ranking is being computed; check again shortly",
        )


class Page(BaseModel):
    items: list[Any]
    total: int
    limit: int
    offset: int

"""Why an entry is (in)active, or what a reminder is about, in words (a leaf module).

The freshness rules produce ``Finding``s, the events carry them, and the views show the short wording of
``REASONS`` next to an entry's status; keeping them here lets all three read them without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """A reason in words: why an entry is (in)active, or what a reminder is about."""

    code: str
    ja: str
    en: str
    due: str | None = None  # ISO date a reminder is about (a reminder goes out once per due date)


# Reason code -> short Japanese and English wording (the events carry the detailed sentence).
REASONS: dict[str, tuple[str, str]] = {
    "registration_expired": ("登録の有効期限が過ぎています", "The registration has expired"),
    "training_lapsed": ("必要な講習が期限までに受講されていません", "Required training was not completed in time"),
    "training_unrecorded": ("講習の受講記録が登録されていません", "No training record has been entered"),
    "confirmation_stale": ("活動中であることの確認が途絶えています", "Not confirmed as active recently"),
    "confirmed": ("本人が活動中であることを確認しました", "The expert confirmed being active"),
    "requirements_met": (
        "登録・講習・確認の要件を満たしています",
        "Registration, training and confirmation are in order",
    ),
    "confirmation_due": ("活動中であることの確認期限が近づいています", "Confirmation of being active is due soon"),
    "training_due": ("講習の受講期限が近づいています", "A training course is due soon"),
    "registration_expiring": ("登録の更新期限が近づいています", "The registration must be renewed soon"),
}

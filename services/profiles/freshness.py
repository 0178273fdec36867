"""Keeping the active list active.

An entry is active unless one of these holds (checked in this order, the first gives the reason):
1. registration_expired: the renewal deadline (3 years per cycle) has passed;
2. training_lapsed: in the current cycle, a year's online course (オンライン講習) or the cycle's practical
   course (実践講習) was not completed by its due date. Renewal needs both done 60 days before expiry,
   so the last year's course and the practical course are due at deadline − 60 days, and each earlier
   online course at the end of its cycle year;
3. confirmation_stale: the expert has not confirmed "still active" for ``confirmation_max_age_days``.

Reminders (``profiles.expert.confirmation_due``, once per due date) go out ``reminder_lead_days`` before
a confirmation, a course or the renewal falls due. ``evaluate`` is the one rule; the scheduled job,
the confirmation action, profile updates and the import all apply it through ``apply_status``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session

from services.profiles import repository
from services.profiles.catalogue import REGISTRATION_YEARS, add_years
from services.profiles.events import StatusChange, add_reminder_event, expert_changed
from services.profiles.models import Expert, aware
from services.profiles.reasons import REASONS, Finding
from services.profiles.settings import ProfilesSettings
from tsunagu.db import utcnow
from tsunagu.events import Subjects

log = logging.getLogger(__name__)

TRAINING_DUE_BEFORE_EXPIRY = timedelta(days=60)


@dataclass
class Evaluation:
    problem: Finding | None  # why the entry must be inactive; None: it may be active
    reminders: list[Finding] = field(default_factory=list)


def _day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _training(expert: Any, today: date, settings: ProfilesSettings) -> tuple[Finding | None, list[Finding]]:
    deadline = expert.renewal_deadline
    assert deadline is not None
    lead = timedelta(days=settings.reminder_lead_days)
    if expert.training is None:
        finding = Finding(
            "training_unrecorded",
            "講習（オンライン講習・実践講習）の受講日が登録されていません。プロフィールに記録してください",
            "No training dates are recorded; please add the online and practical course dates",
            deadline.isoformat(),
        )
        return (finding, []) if settings.require_training_record else (None, [finding])
    online = [_day(value) for value in expert.training.get("online", [])]
    practical = [_day(value) for value in expert.training.get("practical", [])]
    cycle_start = max(
        add_years(deadline, -REGISTRATION_YEARS) + timedelta(days=1), expert.registration_date or date.min
    )
    cutoff = deadline - TRAINING_DUE_BEFORE_EXPIRY
    # (course, window start, due date, Japanese name) for each course this cycle requires.
    required: list[tuple[str, date, date, str]] = []
    for year in range(REGISTRATION_YEARS):
        start = add_years(cycle_start, year)
        if start > cutoff:
            break
        due = min(add_years(cycle_start, year + 1) - timedelta(days=1), cutoff)
        required.append(("online", start, due, f"オンライン講習（{start}〜{due}）"))
    required.append(("practical", cycle_start, cutoff, f"実践講習（{cycle_start}〜{cutoff}）"))
    reminders: list[Finding] = []
    for course, start, due, label in required:
        if any(start <= day <= due for day in (online if course == "online" else practical)):
            continue
        english = f"the {course} course due {due}"
        if today > due:
            return Finding("training_lapsed", f"{label}が未受講です", f"Missing: {english}", due.isoformat()), []
        if today >= due - lead:
            reminders.append(
                Finding("training_due", f"{label}の受講期限が近づいています", f"Due soon: {english}", due.isoformat())
            )
    return None, reminders


def evaluate(expert: Any, today: date, settings: ProfilesSettings) -> Evaluation:
    lead = timedelta(days=settings.reminder_lead_days)
    reminders: list[Finding] = []
    if expert.kind == "sekisupe" and expert.renewal_deadline is not None:
        deadline = expert.renewal_deadline
        if today > deadline:
            return Evaluation(
                Finding(
                    "registration_expired",
                    f"登録の有効期限（{deadline}）が過ぎています",
                    f"The registration expired on {deadline}",
                    deadline.isoformat(),
                )
            )
        lapsed, training_reminders = _training(expert, today, settings)
        if lapsed is not None:
            return Evaluation(lapsed)
        reminders += training_reminders
        if today >= deadline - TRAINING_DUE_BEFORE_EXPIRY - lead:
            reminders.append(
                Finding(
                    "registration_expiring",
                    f"登録の更新期限（{deadline}）が近づいています。更新手続きをしてください",
                    f"The registration expires on {deadline}; please renew it",
                    deadline.isoformat(),
                )
            )
    confirmed = aware(expert.last_confirmed_at) or aware(expert.created_at) or datetime.now(UTC)
    due = confirmed.date() + timedelta(days=settings.confirmation_max_age_days)
    if today > due:
        return Evaluation(
            Finding(
                "confirmation_stale",
                f"最終確認（{confirmed.date()}）から{settings.confirmation_max_age_days}日を超えて確認がありません",
                f"Not confirmed since {confirmed.date()} (more than {settings.confirmation_max_age_days} days)",
                due.isoformat(),
            )
        )
    if today >= due - lead:
        reminders.append(
            Finding(
                "confirmation_due",
                f"{due}までに「活動中」の確認をしてください",
                f"Please confirm you are still active by {due}",
                due.isoformat(),
            )
        )
    return Evaluation(None, reminders)


def status_change(expert: Any, evaluation: Evaluation, *, confirmed: bool = False) -> StatusChange | None:
    """The status event the evaluation calls for, if any (does not modify the expert)."""
    problem = evaluation.problem
    if problem is not None:
        if expert.active or expert.status_reason != problem.code:
            return Subjects.EXPERT_DEACTIVATED, problem
        return None
    if not expert.active:
        code = "confirmed" if confirmed else "requirements_met"
        ja, en = REASONS[code]
        return Subjects.EXPERT_REACTIVATED, Finding(code, ja, en)
    return None


def apply_status(expert: Any, change: StatusChange | None, now: datetime) -> None:
    if change is None:
        return
    subject, finding = change
    expert.active = subject == Subjects.EXPERT_REACTIVATED
    expert.status_reason = None if expert.active else finding.code
    expert.status_changed_at = now


def due_reminders(expert: Expert, evaluation: Evaluation) -> list[Finding]:
    """Reminders not yet sent for their due date (only an active entry is reminded)."""
    if not expert.active or evaluation.problem is not None:
        return []
    sent = expert.reminders or {}
    return [finding for finding in evaluation.reminders if sent.get(_reminder_key(finding)) != finding.due]


def _reminder_key(finding: Finding) -> str:
    return f"{finding.code}:{finding.ja}" if finding.code == "training_due" else finding.code


def mark_reminded(expert: Expert, findings: list[Finding]) -> None:
    expert.reminders = (expert.reminders or {}) | {_reminder_key(finding): finding.due or "" for finding in findings}


@dataclass
class FreshnessSummary:
    checked: int = 0
    deactivated: Counter = field(default_factory=Counter)
    reactivated: int = 0
    reminders: Counter = field(default_factory=Counter)
    as_of: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "checked": self.checked,
            "deactivated": dict(self.deactivated),
            "deactivated_total": sum(self.deactivated.values()),
            "reactivated": self.reactivated,
            "reminders": dict(self.reminders),
            "reminders_total": sum(self.reminders.values()),
        }


def run_freshness(
    session: Session, settings: ProfilesSettings, *, today: date | None = None, batch: int = 500
) -> dict[str, Any]:
    """Check every entry; deactivate, reactivate and remind as the rules say. A job, not one request: it
    commits the session once per batch, each change with its events, so a crash midway leaves consistent
    batches and the next run continues."""
    today = today or date.today()
    summary = FreshnessSummary(as_of=today.isoformat())
    last_id = ""
    while True:
        experts = repository.experts_after(session, last_id, batch)
        if not experts:
            break
        now = utcnow()
        for expert in experts:
            summary.checked += 1
            _refresh_one(session, expert, today, settings, now, summary)
        last_id = experts[-1].id
        session.commit()
    log.info("freshness job done", extra={"freshness_summary": summary.as_dict()})
    return summary.as_dict()


def _refresh_one(
    session: Session, expert: Expert, today: date, settings: ProfilesSettings, now: datetime, summary: FreshnessSummary
) -> None:
    evaluation = evaluate(expert, today, settings)
    change = status_change(expert, evaluation)
    if change is not None:
        apply_status(expert, change, now)
        expert_changed(session, expert, change)
        if expert.active:
            summary.reactivated += 1
        else:
            summary.deactivated[change[1].code] += 1
    reminders = due_reminders(expert, evaluation)
    for finding in reminders:
        add_reminder_event(session, expert, finding)
        summary.reminders[finding.code] += 1
    if reminders:
        mark_reminded(expert, reminders)
        session.add(expert)


def run_freshness_job(settings: ProfilesSettings | None = None, *, today: date | None = None) -> dict[str, Any]:
    """For the CLI (``tsunagu experts freshness``) and cron: migrate if needed, run the job, return the summary.
    The events wait in the outbox until the profiles service's relay publishes them."""
    settings = settings or ProfilesSettings()
    engine = repository.prepared_engine(settings)
    try:
        with Session(engine, expire_on_commit=False) as session:
            return run_freshness(session, settings, today=today)
    finally:
        engine.dispose()

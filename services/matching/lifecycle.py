"""The brokering workflow as explicit state machines (after Sharetribe's transaction process): every
state, every transition, who may take it, and the words a person reads when a transition is refused.

A leaf module: plain data and pure functions, no database. ``service.py`` asks ``transition(...)`` whether
a move is allowed, then writes it with a compare-and-set on (state, entity_version), so of two transitions
racing on one object exactly one wins and the other gets the same 409 as any move from a stale state.

Request:    draft ─submit→ submitted ─(scorer)→ ranked ─confirm a proposal→ matched ─complete→ completed
            draft/submitted/ranked ─cancel→ cancelled;  matched ─engagement cancelled→ ranked (open again)
Proposal:   proposed ─accept→ accepted ─confirm→ confirmed
            proposed ─decline→ declined;  proposed/accepted ─withdraw→ withdrawn
            proposed ─(TTL job)→ expired;  proposed/accepted ─(another confirmed, request cancelled)→ closed
Engagement: active ─complete→ completed (then each side rates once);  active ─cancel→ cancelled
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Actor(StrEnum):
    """Who takes a transition, relative to the object (not the caller's role alone)."""

    BROKER = "broker"  # a broker covering the request's prefecture
    EXPERT = "expert"  # the proposed expert (their account)
    SME = "sme"  # a member of the requesting SME (or its creator)
    SYSTEM = "system"  # jobs and the scorer


class RequestState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    RANKED = "ranked"
    MATCHED = "matched"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    CONFIRMED = "confirmed"
    CLOSED = "closed"


class EngagementState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


# Requests a broker may still propose experts for, and an SME may still edit or cancel.
OPEN_REQUEST_STATES = frozenset({RequestState.SUBMITTED, RequestState.RANKED})
EDITABLE_REQUEST_STATES = frozenset({RequestState.DRAFT, RequestState.SUBMITTED, RequestState.RANKED})
# Proposals that still hold a place: they count against the expert's capacity once accepted.
OPEN_PROPOSAL_STATES = frozenset({ProposalState.PROPOSED, ProposalState.ACCEPTED})

_STATE_JA = {
    "draft": "下書き",
    "submitted": "受付済み",
    "ranked": "候補者選定済み",
    "matched": "専門家決定",
    "completed": "完了",
    "cancelled": "取消し",
    "proposed": "提案中",
    "accepted": "専門家が承諾",
    "declined": "専門家が辞退",
    "withdrawn": "提案取下げ",
    "expired": "期限切れ",
    "confirmed": "確定",
    "closed": "終了（他の専門家に決定）",
    "active": "支援中",
}


def state_label_ja(state: str) -> str:
    return _STATE_JA.get(state, state)


@dataclass(frozen=True)
class Transition:
    name: str  # the verb in the API and the event subject (matching.proposal.<event>)
    source: frozenset[str]
    target: str
    actors: frozenset[Actor]
    event: str  # subject suffix, e.g. "accepted"
    needs_reason: bool = False


def _t(
    name: str, source: set[str], target: str, actors: set[Actor], event: str, *, needs_reason: bool = False
) -> Transition:
    return Transition(name, frozenset(source), target, frozenset(actors), event, needs_reason)


R, P, E = RequestState, ProposalState, EngagementState

REQUEST_TRANSITIONS = {
    t.name: t
    for t in (
        _t("submit", {R.DRAFT}, R.SUBMITTED, {Actor.SME}, "submitted"),
        _t("edit", set(EDITABLE_REQUEST_STATES), R.SUBMITTED, {Actor.SME}, "updated"),
        _t("rank", {R.SUBMITTED, R.RANKED}, R.RANKED, {Actor.SYSTEM}, "ranked"),
        _t("match", {R.SUBMITTED, R.RANKED}, R.MATCHED, {Actor.SME}, "matched"),
        _t("complete", {R.MATCHED}, R.COMPLETED, {Actor.SME, Actor.EXPERT, Actor.BROKER}, "completed"),
        _t("reopen", {R.MATCHED}, R.RANKED, {Actor.SME, Actor.EXPERT, Actor.BROKER}, "reopened"),
        _t("cancel", set(EDITABLE_REQUEST_STATES), R.CANCELLED, {Actor.SME, Actor.BROKER}, "cancelled"),
    )
}

PROPOSAL_TRANSITIONS = {
    t.name: t
    for t in (
        _t("accept", {P.PROPOSED}, P.ACCEPTED, {Actor.EXPERT}, "accepted"),
        _t("decline", {P.PROPOSED}, P.DECLINED, {Actor.EXPERT}, "declined", needs_reason=True),
        _t("withdraw", {P.PROPOSED, P.ACCEPTED}, P.WITHDRAWN, {Actor.BROKER}, "withdrawn"),
        _t("confirm", {P.ACCEPTED}, P.CONFIRMED, {Actor.SME}, "confirmed"),
        _t("expire", {P.PROPOSED}, P.EXPIRED, {Actor.SYSTEM}, "expired"),
        _t("close", {P.PROPOSED, P.ACCEPTED}, P.CLOSED, {Actor.SYSTEM}, "closed"),
    )
}

ENGAGEMENT_TRANSITIONS = {
    t.name: t
    for t in (
        _t("complete", {E.ACTIVE}, E.COMPLETED, {Actor.SME, Actor.EXPERT, Actor.BROKER}, "completed"),
        _t("cancel", {E.ACTIVE}, E.CANCELLED, {Actor.SME, Actor.EXPERT, Actor.BROKER}, "cancelled", needs_reason=True),
    )
}

_VERB_JA = {
    "submit": "送信",
    "edit": "編集",
    "rank": "候補者の選定",
    "match": "専門家の決定",
    "complete": "完了",
    "reopen": "再募集",
    "cancel": "取消し",
    "accept": "承諾",
    "decline": "辞退",
    "withdraw": "取下げ",
    "confirm": "確定",
    "expire": "期限切れ処理",
    "close": "終了",
}


class TransitionRefused(Exception):
    """A move not allowed from the current state (409) or not by this actor (403): bilingual words."""

    def __init__(self, status: int, code: str, ja: str, en: str) -> None:
        super().__init__(en)
        self.status, self.code, self.ja, self.en = status, code, ja, en


def check(transitions: dict[str, Transition], name: str, current: str, actor: Actor) -> Transition:
    """The transition ``name`` from ``current`` by ``actor``, or TransitionRefused saying why not."""
    transition = transitions[name]
    if actor not in transition.actors and actor != Actor.SYSTEM:
        raise TransitionRefused(
            403,
            "forbidden",
            f"この操作（{_VERB_JA.get(name, name)}）を行う権限がありません",
            f"You may not {name} this",
        )
    if current not in transition.source:
        allowed = "、".join(state_label_ja(state) for state in sorted(transition.source))
        raise TransitionRefused(
            409,
            "invalid_transition",
            f"現在の状態「{state_label_ja(current)}」では{_VERB_JA.get(name, name)}できません（可能な状態: {allowed}）",
            f"Cannot {name} from state '{current}' (allowed from: {', '.join(sorted(transition.source))})",
        )
    return transition


def stale() -> TransitionRefused:
    """Another transition changed the object between our read and our write: the loser of a race."""
    return TransitionRefused(
        409,
        "conflict",
        "ほかの操作と同時に行われたため反映されませんでした。最新の状態を確認してください",
        "Another change happened at the same time; reload and check the current state",
    )

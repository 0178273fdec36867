"""Business rules of the matching service: who may read which request, submitting a request (with its
``matching.request.submitted`` event in the same transaction), what a reader sees of a ranking, and the
brokering workflow (proposals, engagements, ratings; states and actors in lifecycle.py).

Every transition is checked against lifecycle.py (who, from which state), then written as a
compare-and-set (repository.compare_and_set) with an audit row (``Transition``) and its outbox event in the
caller's transaction: the change, its history and its notification commit together or not at all, and of
two racing transitions exactly one wins (the other gets ``lifecycle.stale()``, a 409).

The event handlers (projections, the scorer) live in consumers.py; every query in repository.py. Functions
here never commit: the route does, so a change and its events are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.matching import lifecycle, repository
from services.matching.assignment import (
    AssignmentInputError,
    Learner,
    Registration,
    Seat,
    SessionInstance,
    TeamInstance,
    TeamProject,
    solve_session,
    solve_teams,
)
from services.matching.lifecycle import Actor, EngagementState, ProposalState, RequestState, TransitionRefused
from services.matching.models import (
    ConsultationSession,
    Engagement,
    ExpertFeature,
    HubProject,
    OutboxRecord,
    ProjectInterest,
    ProjectMember,
    Proposal,
    Rating,
    SessionMeeting,
    SessionRegistration,
    SmeRequest,
    Transition,
)
from services.matching.schemas import (
    AssignmentRead,
    EngagementRead,
    InterestCreate,
    MeetingRead,
    PairScoreRead,
    ProjectCreate,
    ProjectMemberRead,
    ProjectRead,
    ProjectSearchSource,
    ProposalCreate,
    ProposalRead,
    RankingRead,
    RatingCreate,
    RatingRead,
    RequestCreate,
    RequestPatch,
    RequestRead,
    RequestSearchSource,
    RequestSummary,
    SessionCreate,
    SessionExpertRead,
    SessionRead,
    SessionRegistrationCreate,
    SessionRegistrationRead,
    SlotRead,
    TeamsCreate,
    TeamsRead,
    TransitionRead,
    UnservedRead,
)
from services.matching.scoring.features import FeatureMatrix, FeatureRow
from services.matching.scoring.ranker import BROKERS, PUBLIC, RankingInput, entry_for_reader, rank
from services.matching.settings import SERVICE_NAME, MatchingSettings
from tsunagu.auth import Principal, Role
from tsunagu.contracts import (
    EngagementChangedV1,
    ExpertRankingChangedV1,
    HubProjectChangedV1,
    ProposalChangedV1,
    RequestChangedV1,
    RequestSubmittedV1,
    SessionChangedV1,
    SessionMeetingV1,
    SessionUnservedV1,
)
from tsunagu.db import utcnow
from tsunagu.errors import ApiError, forbidden, invalid_field, not_found
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import add_event, record_change
from tsunagu.pagination import Page, PageParams
from tsunagu.reference import dss_roles, prefectures, topics

JST = ZoneInfo("Asia/Tokyo")


CLOSED_BY_OTHER_JA = "他の専門家に決定しました"
CLOSED_BY_CANCEL_JA = "相談依頼が取り消されました"


def _unknown_organization() -> ApiError:
    # Matching learns of organisations from profiles' events: one registered a moment ago may not be here yet.
    return invalid_field(
        "organization_id",
        "登録されていない組織です（登録した直後なら、数秒後にもう一度お試しください）",
        "Unknown organisation (if it was registered just now, try again in a few seconds)",
    )


# --- access -------------------------------------------------------------------------------------


def can_read_request(session: Session, principal: Principal, request: SmeRequest) -> bool:
    """Admins and the system read all; an SME its own requests and its organisations'; regional staff
    (brokers and hub staff) the requests in the prefectures they work."""
    if principal.is_privileged:
        return True
    if principal.role == Role.SME:
        return request.created_by == principal.sub or (
            request.organization_id is not None
            and repository.is_member(session, request.organization_id, principal.sub)
        )
    # A draft is the SME's own until submitted.
    return principal.is_regional_staff and principal.covers(request.prefecture) and request.status != RequestState.DRAFT


# --- requests -----------------------------------------------------------------------------------


def to_read(request: SmeRequest) -> RequestRead:
    return RequestRead(
        **request.model_dump(exclude={"entity_version"}),
        prefecture_name=prefectures()[request.prefecture].name,
    )


def submit_request(session: Session, principal: Principal, body: RequestCreate) -> SmeRequest:
    """A new request by an SME (the caller's role is checked by the route), for an organisation the caller
    acts for if one is named; the topics are the explicit ones plus those the self-diagnosis points to."""
    if body.organization_id is not None:
        organization = repository.get_organization(session, body.organization_id)
        if organization is None:
            raise _unknown_organization()
        if not principal.is_privileged and not repository.is_member(session, body.organization_id, principal.sub):
            raise forbidden("この組織の担当者ではありません", "You do not act for this organisation")
    all_topics = body.all_topics()
    if not all_topics:
        raise invalid_field(
            "topics",
            "相談テーマを1つ以上選ぶか、自社診断に回答してください",
            "Choose at least one topic or answer the self-diagnosis",
        )
    request = SmeRequest(
        created_by=principal.sub,
        topics=all_topics,
        explicit_topics=body.topics,
        status=RequestState.DRAFT if body.draft else RequestState.SUBMITTED,
        **body.model_dump(exclude={"topics", "draft"}),
    )
    session.add(request)
    _audit(session, request.id, "request", request.id, principal, None, request.status)
    if not body.draft:
        _add_submitted_event(session, request)
    return request


# How much of a request's description travels in its events for the search index (issue 12).
SEARCH_SUMMARY_CHARS = 500


def _add_submitted_event(session: Session, request: SmeRequest) -> None:
    """``matching.request.submitted`` (a new event id each time): the scorer ranks the request (again)."""
    submitted = RequestSubmittedV1(
        request_id=request.id,
        **request.model_dump(include={"organization_id", "prefecture", "delivery", "topics", "skills", "industry"}),
        title=request.title,
        summary=request.description[:SEARCH_SUMMARY_CHARS],
        updated_at=request.updated_at,
    )
    add_event(
        session,
        OutboxRecord,
        EventEnvelope.for_change(
            Subjects.REQUEST_SUBMITTED, SERVICE_NAME, request.id, request.entity_version, submitted
        ),
    )


def readable_request(session: Session, principal: Principal, request_id: str) -> SmeRequest:
    request = repository.get_request(session, request_id)
    # The same answer for "absent" and "not yours", so ids cannot be probed.
    if request is None or not can_read_request(session, principal, request):
        raise not_found("相談依頼", "Request")
    return request


def list_visible_requests(
    session: Session, principal: Principal, *, status: str | None, page: PageParams
) -> tuple[Sequence[SmeRequest], int]:
    """The requests the caller may read (newest first) and how many there are; 403 for roles that read none."""
    if principal.is_privileged:
        return repository.list_requests(session, status=status, limit=page.limit, offset=page.offset)
    if principal.role == Role.SME:
        return repository.list_requests(
            session,
            created_by=principal.sub,
            organization_ids=repository.organizations_of_member(session, principal.sub),
            status=status,
            limit=page.limit,
            offset=page.offset,
        )
    if principal.is_regional_staff:
        return repository.list_requests(
            session,
            prefectures=principal.prefectures,
            status=status,
            exclude_status=RequestState.DRAFT,
            limit=page.limit,
            offset=page.offset,
        )
    raise forbidden()


def ranking_view(session: Session, principal: Principal, request_id: str) -> RankingRead:
    request = readable_request(session, principal, request_id)
    ranking = repository.latest_ranking(session, request.id)
    if ranking is None:
        return RankingRead.pending(request.id)
    return RankingRead(
        request_id=request.id,
        status="ranked",
        ranking_id=ranking.id,
        weights_version=ranking.weights_version,
        computed_at=ranking.computed_at,
        candidate_count=ranking.candidate_count,
        # Reasons as this reader may read them: SMEs the expert's public facts, staff the broker-level ones.
        entries=[
            entry_for_reader(entry, BROKERS if principal.is_privileged or principal.is_regional_staff else PUBLIC)
            for entry in ranking.entries
        ],
    )


# --- brokering: who the caller is to an object ----------------------------------------------------


def _is_sme_party(session: Session, principal: Principal, request: SmeRequest) -> bool:
    return principal.role == Role.SME and (
        request.created_by == principal.sub
        or (
            request.organization_id is not None
            and repository.is_member(session, request.organization_id, principal.sub)
        )
    )


def _owns_expert(principal: Principal, feature: ExpertFeature | None) -> bool:
    return (
        principal.role == Role.EXPERT
        and feature is not None
        and feature.owner_user_id is not None
        and feature.owner_user_id == principal.sub
    )


def _actor(
    session: Session, principal: Principal, request: SmeRequest, feature: ExpertFeature | None = None
) -> Actor | None:
    """The caller's part in a transition on this request (and this expert's proposal or engagement):
    the system (jobs), a covering broker (admins act as the operator, like a broker), a member of the SME,
    the proposed expert; None when they have no part in it."""
    if principal.role == Role.SERVICE:
        return Actor.SYSTEM
    if principal.role == Role.ADMIN:
        return Actor.BROKER
    if principal.role == Role.BROKER and principal.covers(request.prefecture):
        return Actor.BROKER
    if _is_sme_party(session, principal, request):
        return Actor.SME
    if _owns_expert(principal, feature):
        return Actor.EXPERT
    return None


def _refused(error: TransitionRefused) -> ApiError:
    return ApiError(error.status, error.code, error.ja, error.en)


def _check(transitions: dict, name: str, current: str, actor: Actor | None) -> lifecycle.Transition:
    """lifecycle.check as an ApiError (same status, code and words); no part at all is a 403."""
    if actor is None:
        raise forbidden()
    try:
        return lifecycle.check(transitions, name, current, actor)
    except TransitionRefused as error:
        raise _refused(error) from error


def _conflict(code: str, ja: str, en: str) -> ApiError:
    return ApiError(409, code, ja, en)


def _audit(
    session: Session,
    request_id: str,
    object_type: str,
    object_id: str,
    principal: Principal | None,
    from_state: str | None,
    to_state: str,
    reason: str | None = None,
) -> None:
    repository.add_transition(
        session,
        Transition(
            request_id=request_id,
            object_type=object_type,
            object_id=object_id,
            actor_id=principal.sub if principal else "system",
            actor_role=principal.role.value if principal else "system",
            from_state=from_state,
            to_state=to_state,
            reason=reason,
        ),
    )


def _move(
    session: Session,
    row: SmeRequest | Proposal | Engagement,
    object_type: str,
    request_id: str,
    principal: Principal | None,
    to_state: str,
    *,
    reason: str | None = None,
    **values: object,
) -> str:
    """Compare-and-set ``row`` to ``to_state`` (plus ``values``) and write its audit row; returns the state
    it left. A lost race is ``lifecycle.stale()`` (409), and nothing is written."""
    field = "status" if isinstance(row, SmeRequest) else "state"
    from_state = getattr(row, field)
    changes = {field: to_state, **values}
    if not isinstance(row, SmeRequest):
        changes["reason"] = reason
    if not repository.compare_and_set(session, row, field, from_state, **changes):
        raise _refused(lifecycle.stale())
    _audit(session, request_id, object_type, row.id, principal, from_state, to_state, reason)
    return from_state


# --- brokering: events ----------------------------------------------------------------------------


def _sme_user_ids(session: Session, request: SmeRequest) -> list[str]:
    members = repository.members_of(session, request.organization_id) if request.organization_id else []
    return list(dict.fromkeys([request.created_by, *members]))


def _emit(session: Session, subject: str, subject_id: str, version: int, data: BaseModel) -> None:
    add_event(session, OutboxRecord, EventEnvelope.for_change(subject, SERVICE_NAME, subject_id, version, data))


def expert_ranking_changed(session: Session, expert_id: str, cause: str) -> None:
    """Tell the scorers (through the outbox) that what this expert's rankings read has changed."""
    event = ExpertRankingChangedV1(expert_id=expert_id, cause=cause)  # type: ignore[arg-type]
    add_event(
        session,
        OutboxRecord,
        EventEnvelope.for_change(Subjects.EXPERT_RANKING_CHANGED, SERVICE_NAME, expert_id, 0, event),
    )


def _actor_id(principal: Principal | None) -> str:
    return principal.sub if principal else "system"


def _case(session: Session, request: SmeRequest, principal: Principal | None) -> dict[str, Any]:
    """The fields every change of a case carries (its request, who is told on the SME's side, who acted)."""
    return {
        "request_id": request.id,
        "request_title": request.title,
        "prefecture": request.prefecture,
        "organization_id": request.organization_id,
        "sme_user_ids": _sme_user_ids(session, request),
        "actor_id": _actor_id(principal),
    }


def _expert(feature: ExpertFeature | None, expert_id: str) -> dict[str, Any]:
    """The expert's name and account as a proposal's or engagement's event names them (the id when unknown)."""
    return {
        "expert_id": expert_id,
        "expert_name": feature.display_name if feature else expert_id,
        "expert_user_id": feature.owner_user_id if feature else None,
    }


def _request_event(
    session: Session, request: SmeRequest, event: str, from_status: str | None, principal: Principal | None, reason=None
) -> None:
    data = RequestChangedV1(
        **_case(session, request, principal),
        reason=reason,
        status=request.status,
        from_status=from_status,
        # For the search index (issue 12); no SME name: SMEs have no setting that allows showing it yet.
        summary=request.description[:SEARCH_SUMMARY_CHARS],
        **request.model_dump(include={"delivery", "topics", "skills", "industry", "updated_at"}),
    )
    _emit(session, f"{Subjects.REQUEST_PREFIX}.{event}", request.id, request.entity_version, data)


def _proposal_event(
    session: Session,
    request: SmeRequest,
    proposal: Proposal,
    feature: ExpertFeature | None,
    event: str,
    from_state: str | None,
    principal: Principal | None,
) -> None:
    data = ProposalChangedV1(
        **_case(session, request, principal),
        reason=proposal.reason,
        proposal_id=proposal.id,
        **_expert(feature, proposal.expert_id),
        broker_id=proposal.broker_id,
        state=proposal.state,
        from_state=from_state,
        expires_at=proposal.expires_at,
    )
    _emit(session, f"{Subjects.PROPOSAL_PREFIX}.{event}", proposal.id, proposal.entity_version, data)
    if (from_state == "accepted") != (proposal.state == "accepted"):
        expert_ranking_changed(session, proposal.expert_id, "load")  # an accepted proposal holds a place


def _engagement_event(
    session: Session,
    request: SmeRequest,
    engagement: Engagement,
    event: str,
    from_state: str | None,
    principal: Principal | None,
    *,
    broker_id: str | None = None,
    rating: Rating | None = None,
) -> None:
    feature = repository.get_expert_feature(session, engagement.expert_id)
    if broker_id is None:
        proposal = repository.get_proposal(session, engagement.proposal_id)
        broker_id = proposal.broker_id if proposal else None
    data = EngagementChangedV1(
        **_case(session, request, principal),
        reason=engagement.reason,
        engagement_id=engagement.id,
        proposal_id=engagement.proposal_id,
        **_expert(feature, engagement.expert_id),
        broker_id=broker_id,
        state=engagement.state,
        from_state=from_state,
        stars=rating.stars if rating else None,
        side=rating.side if rating else None,  # type: ignore[arg-type]
    )
    _emit(session, f"{Subjects.ENGAGEMENT_PREFIX}.{event}", engagement.id, engagement.entity_version, data)
    if (from_state == "active") != (engagement.state == "active"):
        expert_ranking_changed(session, engagement.expert_id, "load")  # an active engagement holds a place
    if rating is not None and rating.side == "sme":
        expert_ranking_changed(session, engagement.expert_id, "rating")  # the outcome factor moves


# --- brokering: reading ---------------------------------------------------------------------------


def _summary(request: SmeRequest) -> RequestSummary:
    return RequestSummary(
        **request.model_dump(include={"id", "title", "description", "prefecture", "delivery", "topics", "status"}),
        prefecture_name=prefectures()[request.prefecture].name,
    )


def proposal_read(session: Session, proposal: Proposal, request: SmeRequest | None = None) -> ProposalRead:
    request = request or repository.get_request(session, proposal.request_id)
    assert request is not None  # a proposal's request is never deleted
    feature = repository.get_expert_feature(session, proposal.expert_id)
    engagement_id = None
    if proposal.state == ProposalState.CONFIRMED:
        engagement_id = next(
            (e.id for e in repository.engagements_of_request(session, request.id) if e.proposal_id == proposal.id),
            None,
        )
    return ProposalRead(
        **proposal.model_dump(exclude={"entity_version"}),
        expert_name=feature.display_name if feature else proposal.expert_id,
        state_label_ja=lifecycle.state_label_ja(proposal.state),
        engagement_id=engagement_id,
        request=_summary(request),
    )


def engagement_read(session: Session, engagement: Engagement) -> EngagementRead:
    request = repository.get_request(session, engagement.request_id)
    assert request is not None
    feature = repository.get_expert_feature(session, engagement.expert_id)
    return EngagementRead(
        **engagement.model_dump(exclude={"entity_version", "sme_user_id", "quota_owner"}),
        expert_name=feature.display_name if feature else engagement.expert_id,
        state_label_ja=lifecycle.state_label_ja(engagement.state),
        ratings=[
            RatingRead(**rating.model_dump(include={"side", "stars", "comment", "created_at"}))
            for rating in repository.ratings_of_engagement(session, engagement.id)
        ],
        request=_summary(request),
    )


def _may_see_expert_object(session: Session, principal: Principal, request: SmeRequest, expert_id: str) -> bool:
    """Whether the caller may read a proposal or engagement of ``expert_id`` on ``request``: whoever reads
    the request, and the expert concerned."""
    if can_read_request(session, principal, request):
        return True
    return principal.role == Role.EXPERT and _owns_expert(principal, repository.get_expert_feature(session, expert_id))


def readable_proposal(session: Session, principal: Principal, proposal_id: str) -> tuple[Proposal, SmeRequest]:
    proposal = repository.get_proposal(session, proposal_id)
    request = repository.get_request(session, proposal.request_id) if proposal else None
    if (
        proposal is None
        or request is None
        or not _may_see_expert_object(session, principal, request, proposal.expert_id)
    ):
        raise not_found("提案", "Proposal")
    return proposal, request


def readable_engagement(session: Session, principal: Principal, engagement_id: str) -> tuple[Engagement, SmeRequest]:
    engagement = repository.get_engagement(session, engagement_id)
    request = repository.get_request(session, engagement.request_id) if engagement else None
    if (
        engagement is None
        or request is None
        or not _may_see_expert_object(session, principal, request, engagement.expert_id)
    ):
        raise not_found("支援案件", "Engagement")
    return engagement, request


def _visibility(session: Session, principal: Principal) -> dict:
    """The narrowing of a proposal or engagement list for this caller (see list_proposals)."""
    if principal.is_privileged:
        return {}
    if principal.role == Role.EXPERT:
        return {"expert_ids": repository.expert_ids_of_owner(session, principal.sub)}
    if principal.is_regional_staff:
        return {"prefectures": list(principal.prefectures)}
    if principal.role == Role.SME:
        return {"sme_user": (principal.sub, repository.organizations_of_member(session, principal.sub))}
    raise forbidden()


def list_visible_proposals(
    session: Session, principal: Principal, *, state: str | None, page: PageParams, request_id: str | None = None
) -> tuple[list[Proposal], int]:
    narrowing = _visibility(session, principal)
    if request_id is not None:
        request = repository.get_request(session, request_id)
        if request is None:
            raise not_found("相談依頼", "Request")
        if can_read_request(session, principal, request):
            narrowing = {}
        elif principal.role == Role.EXPERT:
            mine, _ = repository.list_proposals(session, request_id=request_id, limit=1, offset=0, **narrowing)
            if not mine:
                raise not_found("相談依頼", "Request")
        else:
            raise not_found("相談依頼", "Request")
    return repository.list_proposals(
        session, request_id=request_id, state=state, limit=page.limit, offset=page.offset, **narrowing
    )


def list_visible_engagements(
    session: Session, principal: Principal, *, state: str | None, page: PageParams
) -> tuple[list[Engagement], int]:
    return repository.list_engagements(
        session, state=state, limit=page.limit, offset=page.offset, **_visibility(session, principal)
    )


def history(session: Session, principal: Principal, request_id: str) -> list[TransitionRead]:
    """Every transition of the request, its proposals and engagements, oldest first. Whoever reads the
    request reads it all; a proposed expert reads only the rows of their own proposals and engagements."""
    request = repository.get_request(session, request_id)
    if request is None:
        raise not_found("相談依頼", "Request")
    rows = repository.transitions_of_request(session, request_id)
    if not can_read_request(session, principal, request):
        if principal.role != Role.EXPERT:
            raise not_found("相談依頼", "Request")
        experts = set(repository.expert_ids_of_owner(session, principal.sub))
        own = {p.id for p in repository.list_proposals(session, request_id=request_id, limit=1000, offset=0)[0]}
        own = {
            pid for pid in own if (p := repository.get_proposal(session, pid)) is not None and p.expert_id in experts
        }
        own |= {e.id for e in repository.engagements_of_request(session, request_id) if e.expert_id in experts}
        if not own:
            raise not_found("相談依頼", "Request")
        rows = [row for row in rows if row.object_id in own]
    return [
        TransitionRead(
            **row.model_dump(exclude={"id", "request_id"}), to_state_label_ja=lifecycle.state_label_ja(row.to_state)
        )
        for row in rows
    ]


# --- brokering: eligibility -----------------------------------------------------------------------


def _today_jst(now: datetime) -> date:
    return now.astimezone(JST).date()


def fiscal_year(now: datetime) -> int:
    """The Japanese fiscal year (April to March) of an instant, in Japan time: 2025-03-31 is FY2024."""
    day = _today_jst(now)
    return day.year if day.month >= 4 else day.year - 1


def _check_capacity(session: Session, feature: ExpertFeature) -> None:
    load = repository.open_load_by_expert(session, [feature.expert_id]).get(feature.expert_id, 0)
    if load >= feature.capacity:
        raise _conflict(
            "expert_full",
            f"この専門家は受入れ可能な件数（{feature.capacity}件）に達しています",
            f"The expert has no capacity left ({load} of {feature.capacity} taken)",
        )


def _check_eligible(
    session: Session, request: SmeRequest, feature: ExpertFeature | None, now: datetime
) -> ExpertFeature:
    if feature is None:
        raise not_found("専門家", "Expert")
    if not feature.active:
        raise _conflict("expert_inactive", "この専門家の登録は現在無効です", "The expert's listing is inactive")
    if feature.registration_expires_on is not None and feature.registration_expires_on < _today_jst(now):
        raise _conflict(
            "registration_expired",
            f"この専門家の登録は有効期限（{feature.registration_expires_on.isoformat()}）が切れています",
            f"The expert's registration expired on {feature.registration_expires_on.isoformat()}",
        )
    _check_capacity(session, feature)
    organization = request.organization_id
    if organization is not None and (
        organization in (feature.conflicted_organization_ids or []) or organization == feature.employer_organization_id
    ):
        raise _conflict(
            "conflict_of_interest",
            "利益相反のため、この専門家をこの相談に提案することはできません",
            "Conflict of interest: this expert cannot be proposed for this SME",
        )
    if repository.open_proposal(session, request.id, feature.expert_id) is not None:
        raise _already_proposed()
    return feature


def _already_proposed() -> ApiError:
    return _conflict(
        "already_proposed",
        "この専門家はこの相談にすでに提案されています",
        "This expert already has an open proposal for this request",
    )


# --- brokering: proposals -------------------------------------------------------------------------


def propose(
    session: Session, principal: Principal, request_id: str, body: ProposalCreate, settings: MatchingSettings
) -> Proposal:
    """A covering broker proposes an eligible expert for an open request."""
    request = readable_request(session, principal, request_id)
    if principal.role not in (Role.BROKER, Role.ADMIN, Role.SERVICE) or not principal.covers(request.prefecture):
        raise forbidden(
            "専門家を提案できるのは担当地域のコーディネーターです", "Only a broker covering the region may propose"
        )
    if request.status not in lifecycle.OPEN_REQUEST_STATES:
        allowed = "、".join(lifecycle.state_label_ja(s) for s in sorted(lifecycle.OPEN_REQUEST_STATES))
        raise _conflict(
            "invalid_transition",
            f"現在の状態「{lifecycle.state_label_ja(request.status)}」の相談依頼には提案できません（可能な状態: {allowed}）",
            f"Cannot propose for a request in state '{request.status}'",
        )
    now = utcnow()
    feature = _check_eligible(session, request, repository.get_expert_feature(session, body.expert_id), now)
    proposal = Proposal(
        request_id=request.id,
        expert_id=feature.expert_id,
        broker_id=principal.sub,
        message=body.message,
        state=ProposalState.PROPOSED,
        expires_at=now + timedelta(days=settings.proposal_ttl_days),
    )
    try:
        with session.begin_nested():
            session.add(proposal)
            session.flush()
    except IntegrityError as error:  # another broker proposed the same expert at the same moment
        raise _already_proposed() from error
    _audit(session, request.id, "proposal", proposal.id, principal, None, proposal.state, body.message or None)
    _proposal_event(session, request, proposal, feature, "proposed", None, principal)
    return proposal


def _proposal_context(
    session: Session, principal: Principal, proposal_id: str
) -> tuple[Proposal, SmeRequest, ExpertFeature | None, Actor | None]:
    proposal, request = readable_proposal(session, principal, proposal_id)
    feature = repository.get_expert_feature(session, proposal.expert_id)
    return proposal, request, feature, _actor(session, principal, request, feature)


def _expert_only(actor: Actor | None) -> Actor | None:
    # A broker or the SME reading the proposal has no part in the expert's answer: 403, not their move.
    return actor if actor in (Actor.EXPERT, Actor.SYSTEM) else None


def accept_proposal(session: Session, principal: Principal, proposal_id: str) -> Proposal:
    proposal, request, feature, actor = _proposal_context(session, principal, proposal_id)
    transition = _check(lifecycle.PROPOSAL_TRANSITIONS, "accept", proposal.state, _expert_only(actor))
    if feature is not None:
        repository.lock_expert(session, feature.expert_id)  # accepts for one expert, one at a time
        _check_capacity(session, feature)  # it may have filled up since the proposal
    from_state = _move(session, proposal, "proposal", request.id, principal, transition.target)
    _proposal_event(session, request, proposal, feature, transition.event, from_state, principal)
    return proposal


def decline_proposal(session: Session, principal: Principal, proposal_id: str, reason: str) -> Proposal:
    proposal, request, feature, actor = _proposal_context(session, principal, proposal_id)
    transition = _check(lifecycle.PROPOSAL_TRANSITIONS, "decline", proposal.state, _expert_only(actor))
    from_state = _move(session, proposal, "proposal", request.id, principal, transition.target, reason=reason)
    _proposal_event(session, request, proposal, feature, transition.event, from_state, principal)
    return proposal


def withdraw_proposal(session: Session, principal: Principal, proposal_id: str, reason: str | None) -> Proposal:
    proposal, request, feature, actor = _proposal_context(session, principal, proposal_id)
    transition = _check(lifecycle.PROPOSAL_TRANSITIONS, "withdraw", proposal.state, actor)
    from_state = _move(session, proposal, "proposal", request.id, principal, transition.target, reason=reason)
    _proposal_event(session, request, proposal, feature, transition.event, from_state, principal)
    return proposal


def _close_open_proposals(
    session: Session, request: SmeRequest, principal: Principal | None, reason: str, *, except_id: str | None = None
) -> None:
    for other in repository.open_proposals_of_request(session, request.id, except_id=except_id):
        from_state = _move(session, other, "proposal", request.id, principal, ProposalState.CLOSED, reason=reason)
        feature = repository.get_expert_feature(session, other.expert_id)
        _proposal_event(session, request, other, feature, "closed", from_state, principal)


def confirm_proposal(
    session: Session, principal: Principal, proposal_id: str, settings: MatchingSettings
) -> tuple[Proposal, Engagement]:
    """The SME chooses the expert who accepted: in one transaction the proposal is confirmed, the
    engagement created (within the programme quota), the request matched, and every other open proposal
    of the request closed, each with its audit row and event."""
    proposal, request, feature, actor = _proposal_context(session, principal, proposal_id)
    sme = actor if actor in (Actor.SME, Actor.SYSTEM) else None
    transition = _check(lifecycle.PROPOSAL_TRANSITIONS, "confirm", proposal.state, sme)
    request_transition = _check(lifecycle.REQUEST_TRANSITIONS, "match", request.status, sme)
    now = utcnow()
    year = fiscal_year(now)
    quota_owner = f"org:{request.organization_id}" if request.organization_id else f"user:{request.created_by}"
    limit = settings.free_consultations_per_fiscal_year
    if limit and repository.engagements_in_quota(session, quota_owner, year) >= limit:
        raise _conflict(
            "quota_exceeded",
            f"今年度の無料相談の上限（{limit}件）に達しています",
            f"The free consultations of this fiscal year ({limit}) are used up",
        )
    proposal_from = _move(session, proposal, "proposal", request.id, principal, transition.target)
    request_from = _move(session, request, "request", request.id, principal, request_transition.target)
    engagement = Engagement(
        request_id=request.id,
        proposal_id=proposal.id,
        expert_id=proposal.expert_id,
        organization_id=request.organization_id,
        sme_user_id=principal.sub,
        quota_owner=quota_owner,
        state=EngagementState.ACTIVE,
        fiscal_year=year,
    )
    try:
        with session.begin_nested():
            session.add(engagement)
            session.flush()
    except IntegrityError as error:
        raise _refused(lifecycle.stale()) from error
    _audit(session, request.id, "engagement", engagement.id, principal, None, engagement.state)
    _proposal_event(session, request, proposal, feature, transition.event, proposal_from, principal)
    _engagement_event(session, request, engagement, "created", None, principal, broker_id=proposal.broker_id)
    _request_event(session, request, request_transition.event, request_from, principal)
    _close_open_proposals(session, request, principal, CLOSED_BY_OTHER_JA, except_id=proposal.id)
    return proposal, engagement


# --- brokering: engagements -----------------------------------------------------------------------


def _engagement_context(
    session: Session, principal: Principal, engagement_id: str
) -> tuple[Engagement, SmeRequest, Actor | None]:
    engagement, request = readable_engagement(session, principal, engagement_id)
    feature = repository.get_expert_feature(session, engagement.expert_id)
    return engagement, request, _actor(session, principal, request, feature)


def complete_engagement(session: Session, principal: Principal, engagement_id: str) -> Engagement:
    engagement, request, actor = _engagement_context(session, principal, engagement_id)
    transition = _check(lifecycle.ENGAGEMENT_TRANSITIONS, "complete", engagement.state, actor)
    request_transition = _check(lifecycle.REQUEST_TRANSITIONS, "complete", request.status, actor)
    from_state = _move(
        session, engagement, "engagement", request.id, principal, transition.target, completed_at=utcnow()
    )
    request_from = _move(session, request, "request", request.id, principal, request_transition.target)
    _engagement_event(session, request, engagement, transition.event, from_state, principal)
    _request_event(session, request, request_transition.event, request_from, principal)
    return engagement


def cancel_engagement(session: Session, principal: Principal, engagement_id: str, reason: str) -> Engagement:
    """The engagement ends early: the expert's place is freed and the request is open again."""
    engagement, request, actor = _engagement_context(session, principal, engagement_id)
    transition = _check(lifecycle.ENGAGEMENT_TRANSITIONS, "cancel", engagement.state, actor)
    request_transition = _check(lifecycle.REQUEST_TRANSITIONS, "reopen", request.status, actor)
    from_state = _move(session, engagement, "engagement", request.id, principal, transition.target, reason=reason)
    request_from = _move(session, request, "request", request.id, principal, request_transition.target, reason=reason)
    _engagement_event(session, request, engagement, transition.event, from_state, principal)
    _request_event(session, request, request_transition.event, request_from, principal, reason)
    return engagement


def rate_engagement(session: Session, principal: Principal, engagement_id: str, body: RatingCreate) -> Rating:
    """Each side rates a completed engagement once: the SME (any member) and the expert."""
    engagement, request, actor = _engagement_context(session, principal, engagement_id)
    side = {Actor.SME: "sme", Actor.EXPERT: "expert"}.get(actor)  # type: ignore[arg-type]
    if side is None:
        raise forbidden("評価できるのは相談企業と担当した専門家です", "Only the SME and the expert rate an engagement")
    if engagement.state != EngagementState.COMPLETED:
        raise _conflict(
            "not_completed",
            f"支援が完了してから評価できます（現在の状態: {lifecycle.state_label_ja(engagement.state)}）",
            f"An engagement can be rated once completed (now '{engagement.state}')",
        )
    already = _conflict(
        "already_rated", "この支援案件はすでに評価済みです", "This side has already rated the engagement"
    )
    if repository.rating_of_side(session, engagement.id, side) is not None:
        raise already
    rating = Rating(
        engagement_id=engagement.id,
        side=side,
        rater_id=principal.sub,
        expert_id=engagement.expert_id,
        stars=body.stars,
        comment=body.comment,
    )
    try:
        with session.begin_nested():
            session.add(rating)
            session.flush()
    except IntegrityError as error:
        raise already from error
    _engagement_event(session, request, engagement, "rated", engagement.state, principal, rating=rating)
    return rating


# --- brokering: requests --------------------------------------------------------------------------


def _request_actor(session: Session, principal: Principal, request_id: str) -> tuple[SmeRequest, Actor | None]:
    request = readable_request(session, principal, request_id)
    return request, _actor(session, principal, request)


def submit_draft(session: Session, principal: Principal, request_id: str) -> SmeRequest:
    request, actor = _request_actor(session, principal, request_id)
    transition = _check(lifecycle.REQUEST_TRANSITIONS, "submit", request.status, actor)
    _move(session, request, "request", request.id, principal, transition.target)
    _add_submitted_event(session, request)
    return request


def edit_request(session: Session, principal: Principal, request_id: str, patch: RequestPatch) -> SmeRequest:
    """An SME edits a draft or open request: the request is validated again as a whole; an open one goes
    back to submitted with a new ``matching.request.submitted`` so the scorer ranks it again."""
    request, actor = _request_actor(session, principal, request_id)
    transition = _check(lifecycle.REQUEST_TRANSITIONS, "edit", request.status, actor)
    changes = patch.model_dump(exclude_unset=True)
    merged = request.model_dump(
        include={
            "organization_id",
            "title",
            "description",
            "prefecture",
            "delivery",
            "self_diagnosis",
            "skills",
            "industry",
            "budget_yen_max",
            "urgency",
        }
    )
    merged["topics"] = request.explicit_topics
    merged.update(changes)
    body = RequestCreate.model_validate(merged)
    all_topics = body.all_topics()
    if not all_topics:
        raise invalid_field(
            "topics",
            "相談テーマを1つ以上選ぶか、自社診断に回答してください",
            "Choose at least one topic or answer the self-diagnosis",
        )
    values = body.model_dump(exclude={"topics", "draft", "organization_id"})
    values.update(topics=all_topics, explicit_topics=body.topics)
    draft = request.status == RequestState.DRAFT
    target = RequestState.DRAFT if draft else transition.target
    from_state = _move(session, request, "request", request.id, principal, target, **values)
    _request_event(session, request, transition.event, from_state, principal)
    if not draft:
        _add_submitted_event(session, request)
    return request


def cancel_request(session: Session, principal: Principal, request_id: str, reason: str) -> SmeRequest:
    request, actor = _request_actor(session, principal, request_id)
    transition = _check(lifecycle.REQUEST_TRANSITIONS, "cancel", request.status, actor)
    # A request row keeps no reason; its audit row and event carry it.
    from_state = _move(session, request, "request", request.id, principal, transition.target, reason=reason)
    _request_event(session, request, transition.event, from_state, principal, reason)
    _close_open_proposals(session, request, principal, CLOSED_BY_CANCEL_JA)
    return request


# --- brokering: the expiry job --------------------------------------------------------------------


def expire_proposals(session: Session, now: datetime | None = None) -> int:
    """Move every proposal still unanswered at its ``expires_at`` to expired (actor "system"), with its
    audit row and event. A proposal answered meanwhile loses nothing: its compare-and-set simply fails and
    it is skipped. Returns how many expired."""
    now = now or datetime.now(UTC)
    expired = 0
    seen: set[str] = set()
    while batch := [p for p in repository.proposals_due_to_expire(session, now) if p.id not in seen]:
        for proposal in batch:
            seen.add(proposal.id)
            request = repository.get_request(session, proposal.request_id)
            if request is None:
                continue
            from_state = proposal.state
            if not repository.compare_and_set(session, proposal, "state", from_state, state=ProposalState.EXPIRED):
                continue
            _audit(session, request.id, "proposal", proposal.id, None, from_state, proposal.state)
            feature = repository.get_expert_feature(session, proposal.expert_id)
            _proposal_event(session, request, proposal, feature, "expired", from_state, None)
            expired += 1
    return expired


# --- 相談会 (consultation days) and マナビDX Quest hub projects (issue 11) --------------------------------
# Who may do what: a broker whose prefectures include the venue creates a 相談会 and solves its plan; SMEs
# register (on site); invited experts and registered SMEs read their own meetings. Hub staff create hub
# projects in their prefectures and form and confirm teams; learners (DX人材 who finished the case study)
# state interest; hub staff and brokers of the region read the projects. The plans are solved in
# assignment.py; pair scores for 相談会 come from the scorer (ranker.rank), so conflicts of interest, the
# employer, registration expiry and on-site reach are the same rules as for requests.

SESSION_OPEN, SESSION_PUBLISHED, SESSION_CANCELLED = "open", "published", "cancelled"
PROJECT_OPEN, PROJECT_PROPOSED, PROJECT_CONFIRMED = "open", "team_proposed", "team_confirmed"
PROJECT_SOLVABLE = (PROJECT_OPEN, PROJECT_PROPOSED)
MEMBER_FIT_ROLE, MEMBER_FIT_INTEREST, MEMBER_FIT_SAME_PREFECTURE, MEMBER_FIT_NEIGHBOUR = 60, 30, 10, 5


def _session_staff(principal: Principal, consultation: ConsultationSession) -> bool:
    """The operator, and brokers and hub staff of the venue's prefecture, read the whole day."""
    return principal.is_privileged or (principal.is_regional_staff and principal.covers(consultation.venue_prefecture))


def _owned_expert_ids(session: Session, principal: Principal) -> list[str]:
    return repository.expert_ids_of_owner(session, principal.sub) if principal.role == Role.EXPERT else []


def readable_consultation(session: Session, principal: Principal, session_id: str) -> ConsultationSession:
    """Staff of the venue's prefecture, invited experts, and SMEs (a 相談会 is announced to every SME, so
    they can register) read it; anyone else gets 404 (no data of it)."""
    consultation = repository.get_consultation_session(session, session_id)
    if consultation is not None:
        if _session_staff(principal, consultation):
            return consultation
        if principal.role == Role.SME and consultation.state != SESSION_CANCELLED:
            return consultation
        invited = {seat["expert_id"] for seat in consultation.experts}
        if invited & set(_owned_expert_ids(session, principal)):
            return consultation
    raise not_found("相談会", "Consultation day")


def _session_broker(principal: Principal, consultation: ConsultationSession) -> None:
    """Only a broker of the venue's prefecture (or the operator) changes a 相談会."""
    if not (
        principal.is_privileged or (principal.role == Role.BROKER and principal.covers(consultation.venue_prefecture))
    ):
        raise forbidden(
            "開催地の都道府県を担当する支援機関の方のみ操作できます",
            "Only a broker of the venue's prefecture may do this",
        )


def _session_event(
    session: Session,
    consultation: ConsultationSession,
    subject: str,
    *,
    meetings: list[SessionMeetingV1] | None = None,
    affected: list[str] | None = None,
    unserved: list[str] | None = None,
    unserved_reasons: list[SessionUnservedV1] | None = None,
) -> EventEnvelope:
    data = SessionChangedV1(
        session_id=consultation.id,
        title=consultation.title,
        date=consultation.date,
        venue_prefecture=consultation.venue_prefecture,
        broker_id=consultation.broker_id,
        state=consultation.state,
        meetings=meetings or [],
        affected_user_ids=sorted(set(affected or [])),
        unserved_sme_user_ids=sorted(set(unserved or [])),
        occurred_at=utcnow(),
        venue=consultation.venue,
        unserved=unserved_reasons or [],
        invited_expert_user_ids=_invited_user_ids(session, consultation),
    )
    return EventEnvelope.for_change(subject, SERVICE_NAME, consultation.id, consultation.entity_version, data)


def _invited_user_ids(session: Session, consultation: ConsultationSession) -> list[str]:
    features = repository.expert_features_by_ids(session, [seat["expert_id"] for seat in consultation.experts])
    return sorted({f.owner_user_id for f in features.values() if f.owner_user_id})


def _onsite_reach(feature: ExpertFeature, prefecture: str) -> bool:
    """On site at the venue: the expert serves its prefecture or a neighbour on site (the scorer's rule)."""
    near = {prefecture, *prefectures()[prefecture].neighbours}
    return feature.onsite and bool(near & set(feature.prefectures))


def create_consultation(session: Session, principal: Principal, body: SessionCreate) -> ConsultationSession:
    if not principal.covers(body.venue_prefecture):
        raise forbidden("開催地の都道府県を担当していません", "The venue is outside your prefectures")
    features = repository.expert_features_by_ids(session, [seat.expert_id for seat in body.experts])
    for seat in body.experts:
        feature = features.get(seat.expert_id)
        if feature is None:
            raise invalid_field(
                "experts", f"登録されていない専門家です（{seat.expert_id}）", f"Unknown expert {seat.expert_id}"
            )
        if not feature.active:
            raise invalid_field(
                "experts", f"{feature.display_name}さんの登録は現在無効です", f"{seat.expert_id} is not active"
            )
        if feature.registration_expires_on is not None and feature.registration_expires_on < body.date:
            raise invalid_field(
                "experts",
                f"{feature.display_name}さんの登録は開催日までに期限切れになります",
                f"{seat.expert_id}'s registration expires before the day",
            )
        if not _onsite_reach(feature, body.venue_prefecture):
            raise invalid_field(
                "experts",
                f"{feature.display_name}さんは開催地（{prefectures()[body.venue_prefecture].name}）で訪問対応していません",
                f"{seat.expert_id} does not serve the venue's prefecture on site",
            )
    consultation = ConsultationSession(
        **body.model_dump(include={"title", "date", "venue_prefecture", "venue", "max_meetings_per_sme"}),
        slots=[slot.model_dump() for slot in body.slots],
        experts=[seat.model_dump() for seat in body.experts],
        broker_id=principal.sub,
    )
    session.add(consultation)
    add_event(session, OutboxRecord, _session_event(session, consultation, Subjects.SESSION_CREATED))
    return consultation


def list_consultations(
    session: Session, principal: Principal, page: PageParams
) -> tuple[list[ConsultationSession], int]:
    """Staff: the days in their prefectures; SMEs: every day not cancelled; experts: the days they are
    invited to; the operator: all."""
    if principal.is_privileged:
        return repository.list_consultation_sessions(session, limit=page.limit, offset=page.offset)
    if principal.is_regional_staff:
        return repository.list_consultation_sessions(
            session, prefectures=principal.prefectures, limit=page.limit, offset=page.offset
        )
    if principal.role == Role.SME:
        return repository.list_consultation_sessions(
            session, states=[SESSION_OPEN, SESSION_PUBLISHED], limit=page.limit, offset=page.offset
        )
    if principal.role == Role.EXPERT:
        return repository.list_consultation_sessions(
            session, expert_ids=_owned_expert_ids(session, principal), limit=page.limit, offset=page.offset
        )
    raise forbidden()


def _slot_reads(consultation: ConsultationSession) -> list[SlotRead]:
    return [SlotRead(index=i, start=slot["start"], end=slot["end"]) for i, slot in enumerate(consultation.slots)]


def _meeting_reads(
    session: Session, consultation: ConsultationSession, meetings: list[SessionMeeting]
) -> list[MeetingRead]:
    features = repository.expert_features_by_ids(session, {m.expert_id for m in meetings})
    registrations = {r.id: r for r in repository.registrations_of_session(session, consultation.id)}
    organizations = repository.organizations_by_ids(
        session, {r.organization_id for r in registrations.values() if r.organization_id}
    )
    reads = []
    for meeting in meetings:
        registration = registrations.get(meeting.registration_id)
        organization = (
            organizations.get(registration.organization_id) if registration and registration.organization_id else None
        )
        slot = consultation.slots[meeting.slot]
        feature = features.get(meeting.expert_id)
        reads.append(
            MeetingRead(
                slot=meeting.slot,
                start=slot["start"],
                end=slot["end"],
                expert_id=meeting.expert_id,
                expert_name=feature.display_name if feature else meeting.expert_id,
                registration_id=meeting.registration_id,
                organization_name=organization.name if organization else None,
                score=meeting.score,
                reason_ja=meeting.reason_ja,
                reason_en=meeting.reason_en,
            )
        )
    return reads


def visible_meetings(
    session: Session,
    principal: Principal,
    consultation: ConsultationSession,
    *,
    expert_id: str | None = None,
    registration_id: str | None = None,
) -> list[SessionMeeting]:
    """The published meetings this reader may see, narrowed to one expert or one registration if asked:
    staff all; an expert their own; an SME those of their registration."""
    meetings = repository.meetings_of_session(session, consultation.id)
    if not _session_staff(principal, consultation):
        own_experts = set(_owned_expert_ids(session, principal))
        mine = (
            repository.registration_of_user(session, consultation.id, principal.sub)
            if principal.role == Role.SME
            else None
        )
        meetings = [
            m for m in meetings if m.expert_id in own_experts or (mine is not None and m.registration_id == mine.id)
        ]
    if expert_id is not None:
        meetings = [m for m in meetings if m.expert_id == expert_id]
    if registration_id is not None:
        meetings = [m for m in meetings if m.registration_id == registration_id]
    return meetings


def consultation_read(session: Session, principal: Principal, consultation: ConsultationSession) -> SessionRead:
    staff = _session_staff(principal, consultation)
    experts = []
    if staff:
        features = repository.expert_features_by_ids(session, [seat["expert_id"] for seat in consultation.experts])
        experts = [
            SessionExpertRead(
                expert_id=seat["expert_id"],
                display_name=features[seat["expert_id"]].display_name
                if seat["expert_id"] in features
                else seat["expert_id"],
                max_meetings=seat["max_meetings"],
                slots=seat.get("slots"),
            )
            for seat in consultation.experts
        ]
    mine = (
        repository.registration_of_user(session, consultation.id, principal.sub) if principal.role == Role.SME else None
    )
    return SessionRead(
        **consultation.model_dump(
            include={
                "id",
                "title",
                "date",
                "venue_prefecture",
                "venue",
                "max_meetings_per_sme",
                "state",
                "created_at",
                "updated_at",
            }
        ),
        prefecture_name=prefectures()[consultation.venue_prefecture].name,
        slots=_slot_reads(consultation),
        broker_id=consultation.broker_id if staff else None,
        experts=experts,
        registration_count=repository.count_registrations(session, consultation.id) if staff else None,
        my_registration_id=mine.id if mine else None,
        meetings=_meeting_reads(session, consultation, visible_meetings(session, principal, consultation)),
    )


def register_for_consultation(
    session: Session, principal: Principal, session_id: str, body: SessionRegistrationCreate
) -> SessionRegistration:
    consultation = readable_consultation(session, principal, session_id)
    if principal.role != Role.SME and not principal.is_privileged:
        raise forbidden("相談会には中小企業の方が申し込めます", "Only SMEs register for a consultation day")
    if consultation.state == SESSION_CANCELLED:
        raise ApiError(409, "session_cancelled", "この相談会は中止されました", "This consultation day was cancelled")
    if body.organization_id is not None:
        if repository.get_organization(session, body.organization_id) is None:
            raise _unknown_organization()
        if not principal.is_privileged and not repository.is_member(session, body.organization_id, principal.sub):
            raise forbidden("この組織の担当者ではありません", "You do not act for this organisation")
    topics = body.all_topics()
    if not topics:
        raise invalid_field(
            "topics",
            "相談テーマを1つ以上選ぶか、自社診断に回答してください",
            "Choose at least one topic or answer the self-diagnosis",
        )
    if repository.registration_of_user(session, consultation.id, principal.sub) is not None:
        raise ApiError(
            409, "already_registered", "この相談会には申込済みです", "You have already registered for this day"
        )
    registration = SessionRegistration(
        session_id=consultation.id,
        sme_user_id=principal.sub,
        organization_id=body.organization_id,
        topics=topics,
        explicit_topics=body.topics,
        self_diagnosis=body.self_diagnosis,
        note=body.note,
    )
    session.add(registration)
    try:
        session.flush()
    except IntegrityError as error:  # a second registration racing the first
        raise ApiError(
            409, "already_registered", "この相談会には申込済みです", "You have already registered for this day"
        ) from error
    record_change(
        session,
        OutboxRecord,
        consultation,
        lambda c: [_session_event(session, c, Subjects.SESSION_REGISTERED, affected=[principal.sub])],
    )
    return registration


def registration_read(registration: SessionRegistration) -> SessionRegistrationRead:
    return SessionRegistrationRead(**registration.model_dump())


def _feature_matrix(
    features: Sequence[ExpertFeature], ratings: dict[str, tuple[int, float]], load: dict[str, int] | None
) -> FeatureMatrix:
    """A scorer matrix over these experts only. ``load`` None: capacity is not the scorer's concern (a
    相談会 has its own limit per expert, max_meetings)."""
    matrix = FeatureMatrix()
    for feature in features:
        matrix.upsert(FeatureRow(*(getattr(feature, name) for name in FeatureRow._fields)))
    matrix.set_dynamic(load or {}, ratings, {})
    if load is None:
        matrix.capacity[: matrix.size] = np.iinfo(np.int32).max
    return matrix


def consultation_instance(
    session: Session, consultation: ConsultationSession
) -> tuple[SessionInstance, dict[tuple[str, str], tuple[str, str]], list[SessionRegistration]]:
    """The 相談会 as a solver instance: seats, registrations and the scorer's score of every eligible pair
    (on site at the venue, on the day; an expert who covers none of the SME's topics is not a pair), and the
    per-pair reasons (what an SME may read of the expert)."""
    features = repository.expert_features_by_ids(session, [seat["expert_id"] for seat in consultation.experts])
    matrix = _feature_matrix(list(features.values()), repository.rating_stats(session), None)
    registrations = repository.registrations_of_session(session, consultation.id)
    organizations = repository.organizations_by_ids(
        session, {r.organization_id for r in registrations if r.organization_id}
    )
    pair_scores: dict[tuple[str, str], float] = {}
    reasons: dict[tuple[str, str], tuple[str, str]] = {}
    needs = []
    for registration in registrations:
        organization = organizations.get(registration.organization_id) if registration.organization_id else None
        ranked, _candidates = rank(
            matrix,
            RankingInput(
                prefecture=consultation.venue_prefecture,
                delivery="onsite",
                topics=registration.topics,
                skills=[],
                industry=organization.industry if organization else None,
                organization_id=registration.organization_id,
            ),
            today=consultation.date,
            limit=max(matrix.size, 1),
        )
        for entry in ranked:
            if entry.covered_topics:
                key = (registration.id, entry.expert_id)
                pair_scores[key] = round(entry.score, 4)
                view = entry.view(PUBLIC, registration.topics)
                reasons[key] = (view["reason_ja"], view["reason_en"])
        blocked = frozenset(
            f.expert_id
            for f in features.values()
            if registration.organization_id
            and (
                registration.organization_id in f.conflicted_organization_ids
                or f.employer_organization_id == registration.organization_id
            )
        )
        needs.append(
            Registration(registration.id, tuple(registration.topics), consultation.max_meetings_per_sme, blocked)
        )
    seats = [
        Seat(
            seat["expert_id"],
            seat["max_meetings"],
            frozenset(seat["slots"]) if seat.get("slots") is not None else None,
            frozenset(features[seat["expert_id"]].topics) if seat["expert_id"] in features else frozenset(),
        )
        for seat in consultation.experts
    ]
    labels = {topic_id: topic.label_ja for topic_id, topic in topics().items()}
    return SessionInstance(len(consultation.slots), seats, needs, pair_scores, labels), reasons, registrations


def solve_consultation(session: Session, principal: Principal, session_id: str, publish: bool) -> AssignmentRead:
    """Solve the day's plan (assignment.solve_session) and, when ``publish``, store it and tell those whose
    meetings are new, moved or gone (``matching.session.published`` the first time, ``.changed`` after)."""
    consultation = readable_consultation(session, principal, session_id)
    _session_broker(principal, consultation)
    if consultation.state == SESSION_CANCELLED:
        raise ApiError(409, "session_cancelled", "この相談会は中止されました", "This consultation day was cancelled")
    instance, reasons, registrations = consultation_instance(session, consultation)
    solution = solve_session(instance)
    answer = AssignmentRead(
        session_id=consultation.id,
        status="optimal" if solution.status == "optimal" else "feasible",
        published=publish,
        meetings=[],
        objective=solution.objective,
        served=solution.served,
        registrations=len(registrations),
        pair_scores=[
            PairScoreRead(registration_id=r, expert_id=e, score=s) for (r, e), s in sorted(instance.pair_scores.items())
        ],
        unserved=[UnservedRead(registration_id=r, reason_ja=ja, reason_en=en) for r, ja, en in solution.unserved],
        reasons_ja=solution.reasons_ja,
        reasons_en=solution.reasons_en,
        solve_seconds=round(solution.solve_seconds, 3),
    )
    meetings = [
        SessionMeeting(
            session_id=consultation.id,
            slot=m.slot,
            expert_id=m.expert_id,
            registration_id=m.registration_id,
            score=m.score,
            reason_ja=reasons[m.registration_id, m.expert_id][0],
            reason_en=reasons[m.registration_id, m.expert_id][1],
        )
        for m in solution.meetings
    ]
    answer.meetings = _meeting_reads(session, consultation, meetings)
    if not publish:
        return answer
    before = repository.meetings_of_session(session, consultation.id)
    was_published = consultation.state == SESSION_PUBLISHED
    repository.replace_meetings(session, consultation.id, meetings)
    users_of_registration = {r.id: r.sme_user_id for r in registrations}
    features = repository.expert_features_by_ids(session, {m.expert_id for m in [*before, *meetings]})

    def people(meeting: SessionMeeting) -> list[str]:
        feature = features.get(meeting.expert_id)
        expert_user = [feature.owner_user_id] if feature and feature.owner_user_id else []
        return [
            *expert_user,
            *(
                [users_of_registration[meeting.registration_id]]
                if meeting.registration_id in users_of_registration
                else []
            ),
        ]

    old = {(m.slot, m.expert_id, m.registration_id) for m in before}
    new = {(m.slot, m.expert_id, m.registration_id) for m in meetings}
    affected = [
        user
        for m in [*before, *meetings]
        if (m.slot, m.expert_id, m.registration_id) in old ^ new
        for user in people(m)
    ]
    unserved_users = [users_of_registration[r] for r, _ja, _en in solution.unserved if r in users_of_registration]
    unserved_reasons = [
        SessionUnservedV1(registration_id=r, sme_user_id=users_of_registration[r], reason_ja=ja, reason_en=en)
        for r, ja, en in solution.unserved
        if r in users_of_registration
    ]
    if not was_published:
        affected = [user for m in meetings for user in people(m)] + unserved_users
    organizations = {read.registration_id: read.organization_name for read in answer.meetings}
    contract_meetings = [
        SessionMeetingV1(
            slot=m.slot,
            start=consultation.slots[m.slot]["start"],
            end=consultation.slots[m.slot]["end"],
            expert_id=m.expert_id,
            expert_name=features[m.expert_id].display_name if m.expert_id in features else m.expert_id,
            expert_user_id=features[m.expert_id].owner_user_id if m.expert_id in features else None,
            registration_id=m.registration_id,
            sme_user_id=users_of_registration[m.registration_id],
            organization_name=organizations.get(m.registration_id),
        )
        for m in meetings
    ]
    subject = Subjects.SESSION_CHANGED if was_published else Subjects.SESSION_PUBLISHED
    plan = answer.model_dump(mode="json", exclude={"meetings", "published"})
    record_change(
        session,
        OutboxRecord,
        consultation,
        lambda c: [
            _session_event(
                session,
                c,
                subject,
                meetings=contract_meetings,
                affected=affected,
                unserved=unserved_users,
                unserved_reasons=unserved_reasons,
            )
        ],
        state=SESSION_PUBLISHED,
        plan=plan,
    )
    return answer


def published_plan(session: Session, principal: Principal, session_id: str) -> AssignmentRead:
    """The last published plan (staff of the venue's prefecture)."""
    consultation = readable_consultation(session, principal, session_id)
    if not _session_staff(principal, consultation):
        raise forbidden()
    if not consultation.plan:
        raise not_found("公開済みの割当", "Published plan")
    meetings = _meeting_reads(session, consultation, repository.meetings_of_session(session, consultation.id))
    return AssignmentRead(**consultation.plan, meetings=meetings, published=True)


def schedule_rows(
    session: Session, principal: Principal, session_id: str, *, expert_id: str | None, registration_id: str | None
) -> tuple[ConsultationSession, list[MeetingRead]]:
    """The meetings for a schedule file: the whole day (staff), one expert, or one SME (their own only)."""
    consultation = readable_consultation(session, principal, session_id)
    meetings = visible_meetings(session, principal, consultation, expert_id=expert_id, registration_id=registration_id)
    return consultation, _meeting_reads(session, consultation, meetings)


# --- hub projects -----------------------------------------------------------------------------------


def _project_staff(principal: Principal, project: HubProject) -> bool:
    return principal.is_privileged or (principal.is_regional_staff and principal.covers(project.prefecture))


def _owned_learner_ids(session: Session, principal: Principal) -> list[str]:
    if principal.role != Role.EXPERT:
        return []
    features = repository.expert_features_by_ids(session, repository.expert_ids_of_owner(session, principal.sub))
    return [f.expert_id for f in features.values() if f.kind == "dx_talent"]


def _owned_member_ids(session: Session, principal: Principal) -> list[str]:
    """Every profile of an expert account that may sit in a team: a learner, or a 登録セキスペ mentor."""
    return _owned_expert_ids(session, principal)


def _sme_of_project(session: Session, principal: Principal, project: HubProject) -> bool:
    return (
        principal.role == Role.SME
        and project.organization_id is not None
        and repository.is_member(session, project.organization_id, principal.sub)
    )


def readable_project(session: Session, principal: Principal, project_id: str) -> HubProject:
    """Hub staff and brokers of the region, the SME, learners (open projects, and those they are in)."""
    project = repository.get_hub_project(session, project_id)
    if project is not None:
        if _project_staff(principal, project) or _sme_of_project(session, principal, project):
            return project
        if project.state in PROJECT_SOLVABLE and _owned_learner_ids(session, principal):
            return project
        # A member of its team, a learner or a 登録セキスペ mentor (who is told of the team and must read it).
        member_ids = set(_owned_member_ids(session, principal))
        if member_ids and any(
            m.learner_id in member_ids for m in repository.members_of_projects(session, [project.id])
        ):
            return project
    raise not_found("プロジェクト", "Project")


def _hub_staff(principal: Principal, project_prefecture: str) -> None:
    if not (principal.is_privileged or (principal.role == Role.HUB and principal.covers(project_prefecture))):
        raise forbidden(
            "この地域のハブ（マナビDX Quest 拠点）の担当者のみ操作できます", "Only hub staff of this region may do this"
        )


def _project_event(
    session: Session,
    project: HubProject,
    subject: str,
    principal: Principal | None,
    members: list[ProjectMember] | None = None,
) -> EventEnvelope:
    features = repository.expert_features_by_ids(session, {m.learner_id for m in members or []})
    data = _project_data(
        project,
        occurred_at=utcnow(),
        member_user_ids=sorted({f.owner_user_id for f in features.values() if f.owner_user_id}),
        actor_id=_actor_id(principal),
    )
    return EventEnvelope.for_change(subject, SERVICE_NAME, project.id, project.entity_version, data)


def _project_data(
    project: HubProject,
    *,
    occurred_at: datetime,
    member_user_ids: list[str] | None = None,
    actor_id: str | None = None,
) -> HubProjectChangedV1:
    """A project as its events carry it and the search index reads it; the members and the actor only the
    events name."""
    return HubProjectChangedV1(
        project_id=project.id,
        title=project.title,
        summary=project.summary,
        prefecture=project.prefecture,
        remote_ok=project.remote_ok,
        topics=list(project.topics),
        skills=[requirement["role"] for requirement in project.requirements],
        state=project.state,
        hub_organization_id=project.hub_organization_id,
        sme_name=project.sme_name if project.sme_name_public else None,
        team_size=project.team_size,
        start_on=project.start_on,
        weeks=project.weeks,
        occurred_at=occurred_at,
        member_user_ids=member_user_ids or [],
        actor_id=actor_id,
    )


def create_project(session: Session, principal: Principal, body: ProjectCreate) -> HubProject:
    _hub_staff(principal, body.prefecture)
    sme_name = body.sme_name
    if body.organization_id is not None:
        organization = repository.get_organization(session, body.organization_id)
        if organization is None:
            raise _unknown_organization()
        sme_name = sme_name or organization.name
    project = HubProject(
        **body.model_dump(exclude={"requirements", "sme_name"}),
        sme_name=sme_name,
        requirements=[requirement.model_dump() for requirement in body.requirements],
        created_by=principal.sub,
    )
    session.add(project)
    add_event(session, OutboxRecord, _project_event(session, project, Subjects.PROJECT_CREATED, principal))
    return project


def list_projects(
    session: Session, principal: Principal, page: PageParams, *, cohort: str | None, state: str | None
) -> tuple[list[HubProject], int]:
    states = [state] if state else None
    if principal.is_privileged:
        return repository.list_hub_projects(session, cohort=cohort, states=states, limit=page.limit, offset=page.offset)
    if principal.is_regional_staff:
        return repository.list_hub_projects(
            session,
            prefectures=principal.prefectures,
            cohort=cohort,
            states=states,
            limit=page.limit,
            offset=page.offset,
        )
    if principal.role == Role.SME:
        organization_ids = repository.organizations_of_member(session, principal.sub)
        if not organization_ids:
            return [], 0
        rows, _ = repository.list_hub_projects(session, cohort=cohort, organization_ids=organization_ids)
        rows = [
            row for row in rows if row.organization_id in organization_ids and (state is None or row.state == state)
        ]
        return rows[page.offset : page.offset + page.limit], len(rows)
    learner_ids = _owned_learner_ids(session, principal)
    member_ids = _owned_member_ids(session, principal)
    if member_ids:  # learners: open projects and their own; mentors: the teams they are in
        rows, _ = repository.list_hub_projects(
            session,
            cohort=cohort,
            states=list(PROJECT_SOLVABLE) if learner_ids else [],
            learner_id_in=member_ids,
        )
        rows = [row for row in rows if state is None or row.state == state]
        return rows[page.offset : page.offset + page.limit], len(rows)
    raise forbidden()


def project_reads(session: Session, principal: Principal, projects: list[HubProject]) -> list[ProjectRead]:
    ids = [p.id for p in projects]
    members = repository.members_of_projects(session, ids)
    features = repository.expert_features_by_ids(session, {m.learner_id for m in members})
    interests: dict[str, int] = {}
    for interest in repository.interests_of_projects(session, ids):
        interests[interest.project_id] = interests.get(interest.project_id, 0) + 1
    roles = dss_roles()
    reads = []
    for project in projects:
        staff = _project_staff(principal, project)
        team = [m for m in members if m.project_id == project.id]
        eligible_learner_ids = set(_owned_member_ids(session, principal)) if not staff else set()
        shown = (
            team
            if staff or _sme_of_project(session, principal, project)
            else [m for m in team if m.state == "confirmed" or m.learner_id in eligible_learner_ids]
        )
        plan_uncovered = []
        if team:
            for requirement in project.requirements:
                if not any(
                    features[m.learner_id].dss_roles.get(requirement["role"], 0) >= requirement["level"]
                    for m in team
                    if m.role == "member" and m.learner_id in features
                ):
                    label = roles[requirement["role"]].label_ja if requirement["role"] in roles else requirement["role"]
                    plan_uncovered.append(f"{label}（レベル{requirement['level']}以上）を担える人がチームにいません")
        reads.append(
            ProjectRead(
                **project.model_dump(
                    exclude={"sme_name", "pins", "exclusions", "entity_version", "created_by", "sme_name_public"}
                ),
                sme_name=project.sme_name
                if (project.sme_name_public or staff or _sme_of_project(session, principal, project))
                else None,
                prefecture_name=prefectures()[project.prefecture].name,
                pins=list(project.pins) if staff else [],
                exclusions=list(project.exclusions) if staff else [],
                interest_count=interests.get(project.id, 0),
                members=[
                    ProjectMemberRead(
                        learner_id=m.learner_id,
                        name=features[m.learner_id].display_name if m.learner_id in features else m.learner_id,
                        role=m.role,  # type: ignore[arg-type]
                        state=m.state,
                        fit=m.fit,
                        dss_roles=dict(features[m.learner_id].dss_roles) if m.learner_id in features else {},
                        reason_ja=m.reason_ja,
                        reason_en=m.reason_en,
                    )
                    for m in shown
                ],
                uncovered_ja=plan_uncovered if staff else [],
            )
        )
    return reads


def add_interest(session: Session, principal: Principal, project_id: str, body: InterestCreate) -> ProjectInterest:
    if principal.role != Role.EXPERT:
        raise forbidden("関心を表明できるのはマナビDX Quest の受講者です", "Only learners state interest")
    project = readable_project(session, principal, project_id)
    owned = _owned_learner_ids(session, principal)
    if body.learner_id is not None and body.learner_id not in owned:
        raise invalid_field("learner_id", "ご自身のDX人材プロフィールではありません", "Not your DX talent profile")
    if not owned:
        raise forbidden("DX人材のプロフィールがありません", "You have no DX talent profile")
    learner_id = body.learner_id or owned[0]
    feature = repository.get_expert_feature(session, learner_id)
    assert feature is not None
    if not feature.case_study_completed:
        raise ApiError(
            409,
            "case_study_required",
            "地域企業協働プログラムには、ケーススタディ教育プログラム（2層）を修了した方のみ参加できます",
            "Only learners who finished the case study programme may join",
        )
    if project.state not in PROJECT_SOLVABLE:
        raise ApiError(
            409, "team_confirmed", "このプロジェクトのチームは確定済みです", "This project's team is confirmed"
        )
    interest = repository.get_interest(session, project.id, learner_id)
    if interest is None:
        interest = ProjectInterest(project_id=project.id, learner_id=learner_id, user_id=principal.sub, note=body.note)
        session.add(interest)
        record_change(
            session, OutboxRecord, project, lambda p: [_project_event(session, p, Subjects.PROJECT_UPDATED, principal)]
        )
    return interest


def _region_points(feature: ExpertFeature, project: HubProject) -> int | None:
    """Region or remote respected: None when the learner cannot take part in this project."""
    if project.prefecture in feature.prefectures:
        return MEMBER_FIT_SAME_PREFECTURE
    if set(prefectures()[project.prefecture].neighbours) & set(feature.prefectures):
        return MEMBER_FIT_NEIGHBOUR
    return 0 if project.remote_ok and feature.remote else None


def _role_points(feature: ExpertFeature, project: HubProject) -> int:
    if not project.requirements:
        return MEMBER_FIT_ROLE // 2 if feature.dss_roles else 0
    credit = 0.0
    for requirement in project.requirements:
        level = feature.dss_roles.get(requirement["role"], 0)
        credit += 1.0 if level >= requirement["level"] else 0.5 if level > 0 else 0.0
    return round(MEMBER_FIT_ROLE * credit / len(project.requirements))


def _blocked(feature: ExpertFeature, organization_id: str | None) -> bool:
    return organization_id is not None and (
        organization_id in feature.conflicted_organization_ids or feature.employer_organization_id == organization_id
    )


def _member_reason(feature: ExpertFeature, project: HubProject, interested: bool) -> tuple[str, str]:
    roles = dss_roles()
    ja, en = [], []
    for requirement in project.requirements:
        level = feature.dss_roles.get(requirement["role"], 0)
        label = roles[requirement["role"]].label_ja if requirement["role"] in roles else requirement["role"]
        if level >= requirement["level"]:
            ja.append(f"{label}（レベル{level}、必要{requirement['level']}）を担う")
            en.append(f"covers {requirement['role']} (level {level}, needed {requirement['level']})")
        elif level:
            ja.append(f"{label}（レベル{level}、必要{requirement['level']}）で補佐")
            en.append(f"supports {requirement['role']} (level {level} of {requirement['level']})")
    if interested:
        ja.append("このプロジェクトに関心を表明")
        en.append("stated interest in this project")
    region = _region_points(feature, project)
    ja.append(
        {MEMBER_FIT_SAME_PREFECTURE: "同じ都道府県", MEMBER_FIT_NEIGHBOUR: "隣接県"}.get(region or 0, "リモートで参加")
    )
    en.append(
        {MEMBER_FIT_SAME_PREFECTURE: "same prefecture", MEMBER_FIT_NEIGHBOUR: "neighbouring prefecture"}.get(
            region or 0, "joins remotely"
        )
    )
    return "・".join(ja), "; ".join(en)


def _needs_mentor(project: HubProject) -> bool:
    labels = topics()
    return any(labels[t].area == "security" for t in project.topics if t in labels)


def team_instance(
    session: Session, projects: list[HubProject]
) -> tuple[TeamInstance, dict[str, ExpertFeature], set[tuple[str, str]], dict[tuple[str, str], tuple[str, str]]]:
    """The cohort as a solver instance: eligible learners (DX人材 who finished the case study, active, not in
    a confirmed team elsewhere, region or remote respected, not conflicted with nor employed by the SME),
    their fit per project, and 登録セキスペ mentors for security projects scored by the scorer."""
    busy = repository.people_in_confirmed_teams(session, except_project_ids=[p.id for p in projects])
    learners = {f.expert_id: f for f in repository.learners(session) if f.expert_id not in busy}
    interested = {
        (i.learner_id, i.project_id) for i in repository.interests_of_projects(session, [p.id for p in projects])
    }
    fit: dict[tuple[str, str], int] = {}
    for project in projects:
        for learner_id, feature in learners.items():
            region = _region_points(feature, project)
            if region is None or _blocked(feature, project.organization_id):
                continue
            interest = MEMBER_FIT_INTEREST if (learner_id, project.id) in interested else 0
            fit[learner_id, project.id] = _role_points(feature, project) + interest + region
    mentor_fit: dict[tuple[str, str], int] = {}
    mentor_reasons: dict[tuple[str, str], tuple[str, str]] = {}
    mentor_capacity: dict[str, int] = {}
    security = [p for p in projects if _needs_mentor(p)]
    if security:
        mentors = [f for f in repository.active_sekisupe(session) if f.expert_id not in busy]
        load = repository.open_load_by_expert(session, [f.expert_id for f in mentors])
        matrix = _feature_matrix(mentors, repository.rating_stats(session), load)
        mentor_capacity = {f.expert_id: max(0, f.capacity - load.get(f.expert_id, 0)) for f in mentors}
        for project in security:
            ranked, _ = rank(
                matrix,
                RankingInput(
                    prefecture=project.prefecture,
                    delivery="either" if project.remote_ok else "onsite",
                    topics=list(project.topics),
                    skills=[],
                    industry=None,
                    organization_id=project.organization_id,
                ),
                today=project.start_on,
                limit=max(matrix.size, 1),
            )
            for entry in ranked:
                if entry.covered_topics:
                    mentor_fit[entry.expert_id, project.id] = max(0, min(100, round(100 * entry.score)))
                    view = entry.view(PUBLIC, list(project.topics))
                    mentor_reasons[entry.expert_id, project.id] = (
                        f"セキュリティのテーマがあるため登録セキスペをメンターに（{view['reason_ja']}）",
                        f"security mentor ({view['reason_en']})",
                    )
        learners.update({f.expert_id: f for f in mentors})
    instance = TeamInstance(
        projects=[
            TeamProject(
                p.id,
                p.team_size,
                tuple((r["role"], r["level"]) for r in p.requirements),
                _needs_mentor(p),
                frozenset(p.pins),
                frozenset(p.exclusions),
            )
            for p in projects
        ],
        learners=[Learner(f.expert_id, dict(f.dss_roles)) for f in learners.values() if f.kind == "dx_talent"],
        fit=fit,
        mentor_fit=mentor_fit,
        mentor_capacity=mentor_capacity,
    )
    return instance, learners, interested, mentor_reasons


def form_teams(session: Session, principal: Principal, body: TeamsCreate) -> TeamsRead:
    """Teams for the named projects or a whole cohort at once (hub staff of their prefectures); pins and
    exclusions given here are kept on the projects, so solving again keeps them. Confirmed teams stay."""
    if principal.role != Role.HUB and not principal.is_privileged:
        raise forbidden("チーム編成はハブ（マナビDX Quest 拠点）の担当者が行います", "Hub staff form teams")
    if not body.project_ids and body.cohort is None:
        raise invalid_field("project_ids", "project_ids か cohort を指定してください", "Give project_ids or a cohort")
    if body.project_ids:
        projects = [readable_project(session, principal, project_id) for project_id in dict.fromkeys(body.project_ids)]
    else:
        projects, _ = repository.list_hub_projects(
            session,
            prefectures=None if principal.is_privileged else principal.prefectures,
            cohort=body.cohort,
            states=list(PROJECT_SOLVABLE),
        )
    for project in projects:
        _hub_staff(principal, project.prefecture)
        if project.state not in PROJECT_SOLVABLE:
            raise ApiError(
                409, "team_confirmed", f"「{project.title}」のチームは確定済みです", f"{project.id}'s team is confirmed"
            )
    by_id = {p.id: p for p in projects}
    for field_name, entries in (("pins", body.pins), ("exclusions", body.exclusions)):
        for entry in entries:
            if entry.project_id not in by_id:
                raise invalid_field(
                    field_name, "編成の対象に含まれないプロジェクトです", "The project is not among those being solved"
                )
            if repository.get_expert_feature(session, entry.learner_id) is None:
                raise invalid_field(
                    field_name,
                    f"登録されていない受講者です（{entry.learner_id}）",
                    f"Unknown learner {entry.learner_id}",
                )
    for project in projects:
        pins = [e.learner_id for e in body.pins if e.project_id == project.id]
        exclusions = [e.learner_id for e in body.exclusions if e.project_id == project.id]
        if pins or exclusions:
            project.pins = list(dict.fromkeys([*project.pins, *pins]))
            project.exclusions = list(dict.fromkeys([*(x for x in project.exclusions if x not in pins), *exclusions]))
            project.pins = [x for x in project.pins if x not in exclusions]
    if not projects:
        return TeamsRead(status="optimal", objective=0, solve_seconds=0.0, projects=[])
    instance, people, interested, mentor_reasons = team_instance(session, projects)
    try:
        solution = solve_teams(instance)
    except AssignmentInputError as error:
        raise invalid_field(error.field, error.message_ja, error.message_en) from error
    for project in projects:
        rows = []
        for learner_id in solution.members.get(project.id, []):
            ja, en = _member_reason(people[learner_id], project, (learner_id, project.id) in interested)
            if learner_id in project.pins:
                ja, en = f"担当者が固定・{ja}", f"pinned by staff; {en}"
            rows.append(
                ProjectMember(
                    project_id=project.id,
                    learner_id=learner_id,
                    fit=instance.fit[learner_id, project.id],
                    reason_ja=ja,
                    reason_en=en,
                )
            )
        mentor = solution.mentors.get(project.id)
        if mentor is not None:
            ja, en = mentor_reasons[mentor, project.id]
            rows.append(
                ProjectMember(
                    project_id=project.id,
                    learner_id=mentor,
                    role="mentor",
                    fit=instance.mentor_fit[mentor, project.id],
                    reason_ja=ja,
                    reason_en=en,
                )
            )
        repository.replace_proposed_members(session, project.id, rows)
        record_change(
            session,
            OutboxRecord,
            project,
            lambda p, rows=rows: [_project_event(session, p, Subjects.PROJECT_TEAM_PROPOSED, principal, rows)],
            state=PROJECT_PROPOSED,
        )
    return TeamsRead(
        status="optimal" if solution.status == "optimal" else "feasible",
        objective=solution.objective,
        solve_seconds=round(solution.solve_seconds, 3),
        projects=project_reads(session, principal, projects),
    )


def confirm_team(session: Session, principal: Principal, project_id: str) -> HubProject:
    """Fix the proposed team and tell its members (``matching.project.team_confirmed``)."""
    project = readable_project(session, principal, project_id)
    _hub_staff(principal, project.prefecture)
    if project.state != PROJECT_PROPOSED:
        raise ApiError(
            409,
            "invalid_transition",
            f"チームを確定できるのは編成案がある時だけです（現在: {project.state}）",
            f"Only a proposed team can be confirmed (now: {project.state})",
        )
    members = repository.members_of_projects(session, [project.id])
    busy = repository.people_in_confirmed_teams(session, except_project_ids=[project.id])
    taken = [m.learner_id for m in members if m.learner_id in busy and m.role == "member"]
    if taken:
        raise ApiError(
            409,
            "member_taken",
            "他のプロジェクトで確定済みの人が含まれています。編成し直してください",
            "Someone is already in another confirmed team; solve again",
        )
    for member in members:
        member.state = "confirmed"
        session.add(member)
    record_change(
        session,
        OutboxRecord,
        project,
        lambda p: [_project_event(session, p, Subjects.PROJECT_TEAM_CONFIRMED, principal, members)],
        state=PROJECT_CONFIRMED,
    )
    return project


# --- the search index's sources (tsunagu search reindex; admins only: the route checks) -----------------


def request_search_sources(session: Session, page: PageParams) -> Page[RequestSearchSource]:
    """Every request past its draft, in id order, as its events carry it for the search index."""
    rows, total = repository.requests_by_id(
        session, exclude_status=RequestState.DRAFT, limit=page.limit, offset=page.offset
    )
    items = [
        RequestSearchSource(
            version=request.entity_version,
            request_id=request.id,
            title=request.title,
            summary=request.description[:SEARCH_SUMMARY_CHARS],
            status=request.status,
            **request.model_dump(include={"prefecture", "delivery", "topics", "skills", "industry", "updated_at"}),
        )
        for request in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def project_search_sources(session: Session, page: PageParams) -> Page[ProjectSearchSource]:
    """Every hub project, in id order, as its events carry it for the search index (no people)."""
    rows, total = repository.hub_projects_by_id(session, limit=page.limit, offset=page.offset)
    items = [
        ProjectSearchSource(
            version=project.entity_version,
            data=_project_data(project, occurred_at=project.updated_at),
        )
        for project in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)

"""Business rules of the matching service: who may do what, requests, projections, rankings."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from services.matching import repository
from services.matching.models import (
    ExpertFeature,
    OrganizationProjection,
    OutboxRecord,
    ProcessedEvent,
    Ranking,
    SmeRequest,
)
from services.matching.schemas import RankingRead, RequestCreate, RequestRead
from services.matching.scoring.features import FeatureStore
from services.matching.scoring.ranker import RankingInput, rank
from services.matching.scoring.weights import DEFAULT_WEIGHTS
from tsunagu.auth import Principal, Role
from tsunagu.contracts import (
    ExpertFeaturesV1,
    OrganizationV1,
    PermanentEventError,
    RequestRankedV1,
    RequestSubmittedV1,
    parse_event_data,
)
from tsunagu.errors import forbidden, invalid_field, not_found
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import add_event, claim_event
from tsunagu.reference import prefectures

SOURCE = "matching"


# --- access -------------------------------------------------------------------------------------


def can_read_request(session: Session, principal: Principal, request: SmeRequest) -> bool:
    if principal.is_privileged:
        return True
    if principal.role == Role.SME:
        return request.created_by == principal.sub or (
            request.organization_id is not None and repository.is_member(session, request.organization_id, principal.sub)
        )
    if principal.role == Role.BROKER:
        return request.prefecture in principal.prefectures
    return False


# --- requests -----------------------------------------------------------------------------------


def to_read(request: SmeRequest) -> RequestRead:
    return RequestRead(
        **request.model_dump(exclude={"entity_version"}),
        prefecture_name=prefectures()[request.prefecture].name,
    )


def submit_request(session: Session, principal: Principal, body: RequestCreate) -> SmeRequest:
    principal.require(Role.SME)
    if body.organization_id is not None:
        organization = repository.get_organization(session, body.organization_id)
        if organization is None:
            raise invalid_field("organization_id", "登録されていない組織です", "Unknown organisation")
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
        created_by=principal.sub, topics=all_topics, explicit_topics=body.topics, **body.model_dump(exclude={"topics"})
    )
    session.add(request)
    submitted = RequestSubmittedV1(
        request_id=request.id,
        **request.model_dump(include={"organization_id", "prefecture", "delivery", "topics", "skills", "industry"}),
    )
    add_event(session, OutboxRecord, EventEnvelope.for_change(Subjects.REQUEST_SUBMITTED, SOURCE, request.id, request.entity_version, submitted))
    return request


def readable_request(session: Session, principal: Principal, request_id: str) -> SmeRequest:
    request = repository.get_request(session, request_id)
    # The same answer for "absent" and "not yours", so ids cannot be probed.
    if request is None or not can_read_request(session, principal, request):
        raise not_found("相談依頼", "Request")
    return request


def list_visible_requests(session: Session, principal: Principal, *, status: str | None, limit: int, offset: int):  # noqa: ANN201
    if principal.is_privileged:
        return repository.list_requests(session, created_by=None, organization_ids=None, prefectures=None, status=status, limit=limit, offset=offset)
    if principal.role == Role.SME:
        organizations = repository.organizations_of_member(session, principal.sub)
        return repository.list_requests(session, created_by=principal.sub, organization_ids=organizations, prefectures=None, status=status, limit=limit, offset=offset)
    if principal.role == Role.BROKER:
        return repository.list_requests(session, created_by=None, organization_ids=None, prefectures=principal.prefectures, status=status, limit=limit, offset=offset)
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
        entries=ranking.entries,
    )


# --- projections (consumers in the API process) ---------------------------------------------------


def apply_expert_features(session: Session, envelope: EventEnvelope, consumer: str) -> None:
    data: ExpertFeaturesV1 = parse_event_data(envelope, Subjects.EXPERT_UPSERTED)
    if not claim_event(session, ProcessedEvent, envelope.id, consumer):
        return
    current = repository.get_expert_feature(session, data.expert_id)
    if current is not None and current.entity_version >= envelope.entity_version:
        return  # an older or equal version arrived late: what we hold is newer
    values = data.model_dump()
    values.pop("expert_id")
    if current is None:
        current = ExpertFeature(expert_id=data.expert_id, entity_version=envelope.entity_version, **values)
    else:
        for key, value in values.items():
            setattr(current, key, value)
        current.entity_version = envelope.entity_version
    current.changed_at = datetime.now(UTC)
    current.change_seq = repository.next_change_seq(session)
    session.add(current)


def apply_organization(session: Session, envelope: EventEnvelope, consumer: str) -> None:
    data: OrganizationV1 = parse_event_data(envelope, Subjects.ORGANIZATION_UPSERTED)
    if not claim_event(session, ProcessedEvent, envelope.id, consumer):
        return
    current = repository.get_organization(session, data.organization_id)
    if current is not None and current.entity_version >= envelope.entity_version:
        return
    if current is None:
        current = OrganizationProjection(organization_id=data.organization_id, entity_version=0, name=data.name, prefecture=data.prefecture)
    current.entity_version = envelope.entity_version
    current.name = data.name
    current.prefecture = data.prefecture
    current.industry = data.industry
    session.add(current)
    repository.replace_members(session, data.organization_id, data.member_user_ids)


# --- ranking (the scorer worker) -----------------------------------------------------------------


def rank_submitted_request(session: Session, store: FeatureStore, envelope: EventEnvelope, consumer: str) -> Ranking | None:
    """Rank one submitted request; a repeated event (same id) is ignored, so no duplicate ranking."""
    data: RequestSubmittedV1 = parse_event_data(envelope, Subjects.REQUEST_SUBMITTED)
    if not claim_event(session, ProcessedEvent, envelope.id, consumer):
        return None
    request = repository.get_request(session, data.request_id)
    if request is None:
        raise PermanentEventError(f"request {data.request_id} does not exist")
    matrix = store.refresh()
    ranked, candidates = rank(
        matrix,
        RankingInput(prefecture=data.prefecture, delivery=data.delivery, topics=data.topics, skills=data.skills, industry=data.industry),
        weights=DEFAULT_WEIGHTS,
    )
    ranking = Ranking(
        request_id=request.id,
        source_event_id=envelope.id,
        weights_version=DEFAULT_WEIGHTS.version,
        candidate_count=candidates,
        entries=[entry.as_entry(i + 1, DEFAULT_WEIGHTS, data.topics) for i, entry in enumerate(ranked)],
    )
    session.add(ranking)
    request.status = "ranked"
    request.entity_version += 1
    request.updated_at = datetime.now(UTC)
    session.add(request)
    ranked_event = RequestRankedV1(
        request_id=request.id,
        ranking_id=ranking.id,
        weights_version=ranking.weights_version,
        candidate_count=candidates,
        top_expert_ids=[entry.expert_id for entry in ranked],
    )
    add_event(session, OutboxRecord, EventEnvelope.for_change(Subjects.REQUEST_RANKED, SOURCE, request.id, request.entity_version, ranked_event))
    return ranking



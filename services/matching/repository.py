"""Every query of the matching service, in one place."""

from __future__ import annotations

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from services.matching.models import (
    ExpertFeature,
    OrganizationMember,
    OrganizationProjection,
    Ranking,
    SmeRequest,
)


def get_request(session: Session, request_id: str) -> SmeRequest | None:
    return session.get(SmeRequest, request_id)


def list_requests(
    session: Session,
    *,
    created_by: str | None,
    organization_ids: list[str] | None,
    prefectures: list[str] | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[SmeRequest], int]:
    query = select(SmeRequest)
    conditions = []
    if created_by is not None or organization_ids is not None:
        own = []
        if created_by is not None:
            own.append(col(SmeRequest.created_by) == created_by)
        if organization_ids:
            own.append(col(SmeRequest.organization_id).in_(organization_ids))
        conditions.append(or_(*own))
    if prefectures is not None:
        conditions.append(col(SmeRequest.prefecture).in_(prefectures))
    if status is not None:
        conditions.append(col(SmeRequest.status) == status)
    for condition in conditions:
        query = query.where(condition)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(SmeRequest.created_at).desc(), col(SmeRequest.id)).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def latest_ranking(session: Session, request_id: str) -> Ranking | None:
    return session.exec(
        select(Ranking).where(Ranking.request_id == request_id).order_by(col(Ranking.computed_at).desc()).limit(1)
    ).first()


def ranking_for_event(session: Session, event_id: str) -> Ranking | None:
    return session.exec(select(Ranking).where(Ranking.source_event_id == event_id)).first()


def get_expert_feature(session: Session, expert_id: str) -> ExpertFeature | None:
    return session.get(ExpertFeature, expert_id)


def next_change_seq(session: Session) -> int:
    # Projection writes come from one durable consumer, so max + 1 is normally unique; if two replicas
    # ever race, the scorer's look-back window (features.LOOKBACK) still sees both rows.
    current = session.exec(select(func.max(ExpertFeature.change_seq))).one()
    return (current or 0) + 1


def get_organization(session: Session, organization_id: str) -> OrganizationProjection | None:
    return session.get(OrganizationProjection, organization_id)


def organizations_of_member(session: Session, user_id: str) -> list[str]:
    return list(session.exec(select(OrganizationMember.organization_id).where(OrganizationMember.user_id == user_id)))


def is_member(session: Session, organization_id: str, user_id: str) -> bool:
    return session.get(OrganizationMember, (organization_id, user_id)) is not None


def replace_members(session: Session, organization_id: str, user_ids: list[str]) -> None:
    for member in session.exec(select(OrganizationMember).where(OrganizationMember.organization_id == organization_id)):
        session.delete(member)
    session.flush()
    for user_id in dict.fromkeys(user_ids):
        session.add(OrganizationMember(organization_id=organization_id, user_id=user_id))

"""Every query of the matching service, in one place: requests, rankings, the expert feature projection
(including the scorer's incremental load), the organisation projection with its members, and the brokering
tables (proposals, engagements, ratings, the transitions audit trail).

State changes of the brokering objects go through ``compare_and_set``: one UPDATE guarded by the state and
version the rule read, so of two racing transitions exactly one changes a row (rowcount 1) and the other
learns it lost (rowcount 0) — the same on SQLite and PostgreSQL, with no lock held between read and write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import and_, case, delete, func, literal, or_, tuple_, update
from sqlmodel import Session, col, select

from services.matching.models import (
    ConsultationSession,
    Engagement,
    ExpertFeature,
    HubProject,
    OrganizationMember,
    OrganizationProjection,
    ProjectInterest,
    ProjectMember,
    Proposal,
    Ranking,
    Rating,
    SessionMeeting,
    SessionRegistration,
    SmeRequest,
    Transition,
)
from tsunagu.db import utcnow

Row = TypeVar("Row", SmeRequest, Proposal, Engagement)


def get_request(session: Session, request_id: str) -> SmeRequest | None:
    return session.get(SmeRequest, request_id)


def get_requests(session: Session, request_ids: Iterable[str]) -> dict[str, SmeRequest]:
    """Requests by id, in one read (those that do not exist are missing)."""
    ids = list(set(request_ids))
    if not ids:
        return {}
    return {request.id: request for request in session.exec(select(SmeRequest).where(col(SmeRequest.id).in_(ids)))}


def list_requests(
    session: Session,
    *,
    created_by: str | None = None,
    organization_ids: list[str] | None = None,
    prefectures: list[str] | None = None,
    status: str | None = None,
    exclude_status: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[SmeRequest], int]:
    """Requests newest first and their total. ``created_by`` / ``organization_ids``: those the user made
    or that belong to these organisations; ``prefectures``: those in these prefectures; None: no limit."""
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
    if exclude_status is not None:
        conditions.append(col(SmeRequest.status) != exclude_status)
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


def get_expert_feature(session: Session, expert_id: str) -> ExpertFeature | None:
    return session.get(ExpertFeature, expert_id)


def expert_features_changed_since(session: Session, columns: Sequence[str], seq: int) -> Iterator[tuple[Any, ...]]:
    """The named columns of every projection row with ``change_seq`` above ``seq``, oldest change first.
    Plain column tuples, not ORM objects: 30,000 rows load several times faster."""
    query = select(*(getattr(ExpertFeature, name) for name in columns)).where(col(ExpertFeature.change_seq) > seq)
    yield from session.exec(query.order_by(col(ExpertFeature.change_seq))).yield_per(5000)


def expert_feature_versions_since(session: Session, seq: int) -> list[tuple[str, int, int]]:
    """(expert id, entity version, change seq) of every projection row with ``change_seq`` above ``seq``: the
    keys only, so a reader re-reading a window of recent changes pays for the rows it does not hold yet."""
    query = select(ExpertFeature.expert_id, ExpertFeature.entity_version, ExpertFeature.change_seq).where(
        col(ExpertFeature.change_seq) > seq
    )
    return [(expert_id, version, change) for expert_id, version, change in session.exec(query)]


def expert_features_of(session: Session, columns: Sequence[str], expert_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """The named columns of these experts' projection rows, oldest change first."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(expert_ids), 500):
        query = select(*(getattr(ExpertFeature, name) for name in columns)).where(
            col(ExpertFeature.expert_id).in_(expert_ids[start : start + 500])
        )
        rows.extend(session.exec(query).all())
    position = columns.index("change_seq")
    return sorted(rows, key=lambda row: row[position])


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


def members_of(session: Session, organization_id: str) -> list[str]:
    return list(
        session.exec(
            select(OrganizationMember.user_id)
            .where(OrganizationMember.organization_id == organization_id)
            .order_by(col(OrganizationMember.user_id))
        )
    )


# --- brokering: state changes ---------------------------------------------------------------------


def compare_and_set(session: Session, row: Row, state_field: str, expected: str, **values: Any) -> bool:
    """Move ``row`` from ``expected`` (at the version it was read with) to ``values``, bumping its version
    and ``updated_at``. False when another transaction changed it first (nothing written); True and the row
    refreshed otherwise. The caller's transaction holds the row until it commits, so a racer waits and
    then finds the version moved on."""
    model = type(row)
    statement = (
        update(model)
        .where(
            col(model.id) == row.id,
            getattr(model, state_field) == expected,
            col(model.entity_version) == row.entity_version,
        )
        .values(entity_version=model.entity_version + 1, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    changed = session.connection().execute(statement).rowcount == 1
    session.refresh(row)
    return changed


def lock_expert(session: Session, expert_id: str) -> None:
    """Hold the expert's projection row until the transaction ends (a no-op UPDATE: a row lock on PostgreSQL,
    the write lock on SQLite), so two accepts for one expert on different requests check the capacity one
    after the other instead of both seeing the last free place."""
    session.connection().execute(
        update(ExpertFeature)
        .where(col(ExpertFeature.expert_id) == expert_id)
        .values(expert_id=ExpertFeature.expert_id)
        .execution_options(synchronize_session=False)
    )


def add_transition(session: Session, transition: Transition) -> None:
    session.add(transition)


def transitions_of_request(session: Session, request_id: str) -> list[Transition]:
    return list(
        session.exec(
            select(Transition)
            .where(Transition.request_id == request_id)
            .order_by(col(Transition.at), col(Transition.id))
        )
    )


# --- brokering: proposals -------------------------------------------------------------------------


def get_proposal(session: Session, proposal_id: str) -> Proposal | None:
    return session.get(Proposal, proposal_id)


def open_proposal(session: Session, request_id: str, expert_id: str) -> Proposal | None:
    return session.exec(
        select(Proposal).where(
            Proposal.request_id == request_id,
            Proposal.expert_id == expert_id,
            col(Proposal.state).in_(["proposed", "accepted"]),
        )
    ).first()


def open_proposals_of_request(session: Session, request_id: str, *, except_id: str | None = None) -> list[Proposal]:
    query = select(Proposal).where(Proposal.request_id == request_id, col(Proposal.state).in_(["proposed", "accepted"]))
    if except_id is not None:
        query = query.where(Proposal.id != except_id)
    return list(session.exec(query.order_by(col(Proposal.created_at), col(Proposal.id))))


def list_proposals(
    session: Session,
    *,
    request_id: str | None = None,
    expert_ids: list[str] | None = None,
    prefectures: list[str] | None = None,
    sme_user: tuple[str, list[str]] | None = None,
    state: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Proposal], int]:
    """Proposals newest first and their total, narrowed by each argument given: to one request, to these
    experts, to requests in these prefectures, to requests an SME user made or whose organisation they
    act for (``(user_id, organisation ids)``)."""
    query = select(Proposal)
    if request_id is not None:
        query = query.where(Proposal.request_id == request_id)
    return _newest_of_cases(session, query, Proposal, expert_ids, prefectures, sme_user, state, limit, offset)


def proposals_due_to_expire(session: Session, now: datetime, *, limit: int = 500) -> list[Proposal]:
    return list(
        session.exec(
            select(Proposal)
            .where(Proposal.state == "proposed", col(Proposal.expires_at) <= now)
            .order_by(col(Proposal.expires_at), col(Proposal.id))
            .limit(limit)
        )
    )


def expert_ids_of_owner(session: Session, user_id: str) -> list[str]:
    return list(session.exec(select(ExpertFeature.expert_id).where(ExpertFeature.owner_user_id == user_id)))


# --- brokering: engagements and ratings -----------------------------------------------------------


def get_engagement(session: Session, engagement_id: str) -> Engagement | None:
    return session.get(Engagement, engagement_id)


def engagements_of_request(session: Session, request_id: str) -> list[Engagement]:
    return list(
        session.exec(select(Engagement).where(Engagement.request_id == request_id).order_by(col(Engagement.created_at)))
    )


def list_engagements(
    session: Session,
    *,
    expert_ids: list[str] | None = None,
    prefectures: list[str] | None = None,
    sme_user: tuple[str, list[str]] | None = None,
    state: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[Engagement], int]:
    """Engagements newest first and their total, narrowed like ``list_proposals``."""
    return _newest_of_cases(
        session, select(Engagement), Engagement, expert_ids, prefectures, sme_user, state, limit, offset
    )


def _newest_of_cases(
    session: Session,
    query: Any,
    model: type[Proposal] | type[Engagement],
    expert_ids: list[str] | None,
    prefectures: list[str] | None,
    sme_user: tuple[str, list[str]] | None,
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """A page of proposals or engagements (``model``, selected by ``query``), newest first, and their total,
    narrowed to these experts, to requests in these prefectures, to requests an SME user made or whose
    organisation they act for, and to one state: ``list_proposals`` and ``list_engagements`` alike."""
    if prefectures is not None or sme_user is not None:
        query = query.join(SmeRequest, col(SmeRequest.id) == col(model.request_id))
    if expert_ids is not None:
        query = query.where(col(model.expert_id).in_(expert_ids))
    if prefectures is not None:
        query = query.where(col(SmeRequest.prefecture).in_(prefectures))
    if sme_user is not None:
        user_id, organization_ids = sme_user
        own = [col(SmeRequest.created_by) == user_id]
        if organization_ids:
            own.append(col(SmeRequest.organization_id).in_(organization_ids))
        query = query.where(or_(*own))
    if state is not None:
        query = query.where(model.state == state)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(model.created_at).desc(), col(model.id)).limit(limit).offset(offset)).all()
    return list(rows), total


def engagements_in_quota(session: Session, quota_owner: str, fiscal_year: int) -> int:
    """Active and completed engagements charged to one SME (organisation or user) in one fiscal year."""
    return session.exec(
        select(func.count())
        .select_from(Engagement)
        .where(
            Engagement.quota_owner == quota_owner,
            Engagement.fiscal_year == fiscal_year,
            col(Engagement.state).in_(["active", "completed"]),
        )
    ).one()


def ratings_of_engagement(session: Session, engagement_id: str) -> list[Rating]:
    return list(session.exec(select(Rating).where(Rating.engagement_id == engagement_id).order_by(col(Rating.side))))


def rating_of_side(session: Session, engagement_id: str, side: str) -> Rating | None:
    return session.exec(select(Rating).where(Rating.engagement_id == engagement_id, Rating.side == side)).first()


# --- what the scorer reads ------------------------------------------------------------------------


def open_load_by_expert(session: Session, expert_ids: Iterable[str] | None = None) -> dict[str, int]:
    """How many places each expert has taken: accepted proposals plus active engagements (experts with
    none are absent). ``expert_ids`` narrows the count to these experts; None counts everyone."""
    ids = None if expert_ids is None else list(expert_ids)
    load: dict[str, int] = {}
    for model, state in ((Proposal, "accepted"), (Engagement, "active")):
        query = (
            select(model.expert_id, func.count())
            .where(model.state == state)  # type: ignore[attr-defined]
            .group_by(model.expert_id)
        )
        if ids is not None:
            if not ids:
                return {}
            query = query.where(col(model.expert_id).in_(ids))
        for expert_id, count in session.exec(query):
            load[expert_id] = load.get(expert_id, 0) + count
    return load


def rating_stats(session: Session) -> dict[str, tuple[int, float]]:
    """Per expert: how many SME-side ratings they received and their mean stars (experts with none absent)."""
    rows = session.exec(
        select(Rating.expert_id, func.count(), func.avg(Rating.stars))
        .where(Rating.side == "sme")
        .group_by(Rating.expert_id)
    )
    return {expert_id: (int(count), float(mean)) for expert_id, count, mean in rows}


# --- the scorer's exposure and re-ranking reads (scoring/exposure.py, scoring/rerank.py) ------------


def rankings_computed_since(session: Session, since: datetime) -> list[tuple[str, str, datetime]]:
    """(ranking id, request id, computed at) of every ranking computed at or after ``since``, oldest first:
    the keys only, so a reader that has seen a ranking does not pay for its entries again."""
    query = (
        select(Ranking.id, Ranking.request_id, Ranking.computed_at)
        .where(col(Ranking.computed_at) >= since)
        .order_by(col(Ranking.computed_at))
    )
    return [(ranking_id, request_id, computed_at) for ranking_id, request_id, computed_at in session.exec(query)]


def ranking_entries(session: Session, ranking_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The entries of these rankings (rankings never change once written, so readers may keep them)."""
    entries: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ranking_ids), 500):
        query = select(Ranking.id, Ranking.entries).where(col(Ranking.id).in_(ranking_ids[start : start + 500]))
        entries.update({ranking_id: ranked or [] for ranking_id, ranked in session.exec(query)})
    return entries


def proposal_counts_since(session: Session, since: datetime) -> dict[str, int]:
    """How many proposals each expert received since ``since`` (any state: being proposed is exposure)."""
    rows = session.exec(
        select(Proposal.expert_id, func.count()).where(col(Proposal.created_at) >= since).group_by(Proposal.expert_id)
    )
    return {expert_id: int(count) for expert_id, count in rows}


OPEN_STATUSES = ("submitted", "ranked")  # waiting for an expert: what a (re-)ranking may still serve


def open_requests(session: Session) -> list[SmeRequest]:
    """Requests still waiting for an expert (submitted or ranked): the ones a re-ranking may concern."""
    return list(session.exec(select(SmeRequest).where(col(SmeRequest.status).in_(OPEN_STATUSES))))


class OpenRequestRow(NamedTuple):
    """What the re-ranking reads of an open request (columns only: thousands are read per expert change)."""

    id: str
    prefecture: str
    delivery: str
    topics: list[str]
    skills: list[str]
    industry: str | None
    organization_id: str | None
    ranking_id: str | None  # its latest ranking, None when not ranked yet


def open_requests_with_latest_ranking(session: Session) -> list[OpenRequestRow]:
    """Every open request with the id of its latest ranking, oldest first."""
    latest = (
        select(Ranking.request_id, func.max(Ranking.computed_at).label("computed_at"))
        .group_by(Ranking.request_id)
        .subquery()
    )
    query = (
        select(Ranking.request_id, Ranking.id)
        .join(
            latest,
            (col(Ranking.request_id) == latest.c.request_id) & (col(Ranking.computed_at) == latest.c.computed_at),
        )
        .join(SmeRequest, col(SmeRequest.id) == col(Ranking.request_id))
        .where(col(SmeRequest.status).in_(OPEN_STATUSES))
    )
    ranking_of = dict(session.exec(query).all())
    columns = select(
        SmeRequest.id,
        SmeRequest.prefecture,
        SmeRequest.delivery,
        SmeRequest.topics,
        SmeRequest.skills,
        SmeRequest.industry,
        SmeRequest.organization_id,
    )
    rows = session.exec(columns.where(col(SmeRequest.status).in_(OPEN_STATUSES)).order_by(col(SmeRequest.created_at)))
    return [OpenRequestRow(*row, ranking_of.get(row[0])) for row in rows]


def mark_rerank_due(session: Session, request_ids: Sequence[str], at: datetime) -> int:
    """Mark open requests for re-ranking (a mark already there stays: the oldest wait is served first).
    Not a change of the request: no version bump, no event."""
    marked = 0
    for start in range(0, len(request_ids), 500):  # bounded IN lists
        statement = (
            update(SmeRequest)
            .where(
                col(SmeRequest.id).in_(request_ids[start : start + 500]),
                col(SmeRequest.status).in_(OPEN_STATUSES),
                col(SmeRequest.rerank_due_at).is_(None),
            )
            .values(rerank_due_at=at)
            .execution_options(synchronize_session=False)
        )
        marked += session.connection().execute(statement).rowcount
    return marked


def requests_due_for_rerank(session: Session, limit: int) -> list[SmeRequest]:
    """Marked requests that have a ranking to renew (``ranked``), longest waiting first. A request still
    ``submitted`` keeps its mark and waits for its first ranking, which its submission event makes with the
    experts as they are then; the mark is answered after it, in case the change came while that ranking was
    computed. (Re-ranking it first made the submission's own ranking find a newer version and give way: its
    event, and the correlation id it carries, then ended in no ranking.) On PostgreSQL the rows are locked and
    rows another worker holds are skipped, so workers share the backlog without re-ranking one request twice
    at once."""
    query = (
        select(SmeRequest)
        .where(col(SmeRequest.rerank_due_at).is_not(None), col(SmeRequest.status) == "ranked")
        .order_by(col(SmeRequest.rerank_due_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.exec(query))


def set_ranked(
    session: Session, requests: Sequence[SmeRequest], *, due_at: dict[str, datetime] | None = None
) -> dict[str, int]:
    """Move open requests to ``ranked`` (a new version for those still ``submitted``), each guarded like
    ``compare_and_set``: a request cancelled, matched or edited since it was read (its version moved on) is left
    as it is, as a ranking must never reopen it nor answer an older version of it. Returns the version of each
    request moved (the new one when it was submitted); the others are missing. A re-ranking mark is cleared only
    if it is still the one the re-ranking answered (``due_at``, by request id): a newer mark stays.

    One UPDATE for the whole batch (``(id, entity_version) IN (...)``, ``RETURNING``) instead of an UPDATE and
    a refresh per request: with the version unchanged the status is the one read, so the version is bumped by
    the row's own status. Ranked again is not a change of the request (no new version), so a person's
    transition racing with a background re-ranking (a confirm, an edit) is not refused as a concurrent change."""
    if not requests:
        return {}
    submitted = col(SmeRequest.status) == "submitted"
    now = literal(utcnow(), type_=SmeRequest.__table__.c.updated_at.type)  # type: ignore[attr-defined]
    values: dict[str, Any] = {
        "status": "ranked",
        "entity_version": case((submitted, col(SmeRequest.entity_version) + 1), else_=col(SmeRequest.entity_version)),
        "updated_at": case((submitted, now), else_=col(SmeRequest.updated_at)),
    }
    if due_at:
        answered = or_(
            *(and_(col(SmeRequest.id) == key, col(SmeRequest.rerank_due_at) == at) for key, at in due_at.items())
        )
        values["rerank_due_at"] = case((answered, None), else_=col(SmeRequest.rerank_due_at))
    statement = (
        update(SmeRequest)
        .where(
            tuple_(col(SmeRequest.id), col(SmeRequest.entity_version)).in_(
                [(request.id, request.entity_version) for request in requests]
            ),
            col(SmeRequest.status).in_(OPEN_STATUSES),
        )
        .values(values)
        .returning(col(SmeRequest.id), col(SmeRequest.entity_version))
        .execution_options(synchronize_session=False)
    )
    return {row[0]: row[1] for row in session.connection().execute(statement)}


# --- 相談会 (consultation days) and マナビDX Quest hub projects (issue 11) --------------------------------


def get_consultation_session(session: Session, session_id: str) -> ConsultationSession | None:
    return session.get(ConsultationSession, session_id)


def list_consultation_sessions(
    session: Session,
    *,
    prefectures: list[str] | None = None,
    expert_ids: list[str] | None = None,
    states: list[str] | None = None,
    limit: int,
    offset: int,
) -> tuple[list[ConsultationSession], int]:
    """Sessions by date (newest first) and their total, narrowed to venues in these prefectures, to sessions
    that invited any of these experts (read from the JSON list in Python: a handful of rows per expert),
    to these states."""
    query = select(ConsultationSession)
    if prefectures is not None:
        query = query.where(col(ConsultationSession.venue_prefecture).in_(prefectures))
    if states is not None:
        query = query.where(col(ConsultationSession.state).in_(states))
    query = query.order_by(col(ConsultationSession.date).desc(), col(ConsultationSession.id))
    if expert_ids is not None:
        wanted = set(expert_ids)
        rows = [row for row in session.exec(query) if any(seat["expert_id"] in wanted for seat in row.experts)]
        return rows[offset : offset + limit], len(rows)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    return list(session.exec(query.limit(limit).offset(offset))), total


def registrations_of_session(session: Session, session_id: str) -> list[SessionRegistration]:
    return list(
        session.exec(
            select(SessionRegistration)
            .where(SessionRegistration.session_id == session_id)
            .order_by(col(SessionRegistration.created_at), col(SessionRegistration.id))
        )
    )


def count_registrations(session: Session, session_id: str) -> int:
    return session.exec(
        select(func.count()).select_from(SessionRegistration).where(SessionRegistration.session_id == session_id)
    ).one()


def registration_of_user(session: Session, session_id: str, user_id: str) -> SessionRegistration | None:
    return session.exec(
        select(SessionRegistration).where(
            SessionRegistration.session_id == session_id, SessionRegistration.sme_user_id == user_id
        )
    ).first()


def meetings_of_session(session: Session, session_id: str) -> list[SessionMeeting]:
    return list(
        session.exec(
            select(SessionMeeting)
            .where(SessionMeeting.session_id == session_id)
            .order_by(col(SessionMeeting.slot), col(SessionMeeting.expert_id))
        )
    )


def replace_meetings(session: Session, session_id: str, meetings: list[SessionMeeting]) -> None:
    """The published plan replaces the previous one (deleted first, so the unique slot indexes hold)."""
    session.connection().execute(delete(SessionMeeting).where(col(SessionMeeting.session_id) == session_id))
    session.add_all(meetings)
    session.flush()


def expert_features_by_ids(session: Session, expert_ids: Iterable[str]) -> dict[str, ExpertFeature]:
    ids = list(expert_ids)
    if not ids:
        return {}
    return {
        row.expert_id: row for row in session.exec(select(ExpertFeature).where(col(ExpertFeature.expert_id).in_(ids)))
    }


def organizations_by_ids(session: Session, organization_ids: Iterable[str]) -> dict[str, OrganizationProjection]:
    ids = [organization_id for organization_id in organization_ids if organization_id]
    if not ids:
        return {}
    rows = session.exec(select(OrganizationProjection).where(col(OrganizationProjection.organization_id).in_(ids)))
    return {row.organization_id: row for row in rows}


def get_hub_project(session: Session, project_id: str) -> HubProject | None:
    return session.get(HubProject, project_id)


def list_hub_projects(
    session: Session,
    *,
    project_ids: list[str] | None = None,
    prefectures: list[str] | None = None,
    cohort: str | None = None,
    states: list[str] | None = None,
    organization_ids: list[str] | None = None,
    learner_id_in: list[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[HubProject], int]:
    """Projects newest first and their total, narrowed by each argument given. ``organization_ids`` (an
    SME's) and ``learner_id_in`` (projects these learners are in) widen ``states``: a project is listed if it
    is in the states or belongs to the organisations or has the learners."""
    query = select(HubProject)
    if project_ids is not None:
        query = query.where(col(HubProject.id).in_(project_ids))
    if prefectures is not None:
        query = query.where(col(HubProject.prefecture).in_(prefectures))
    if cohort is not None:
        query = query.where(HubProject.cohort == cohort)
    visible = []
    if states is not None:
        visible.append(col(HubProject.state).in_(states))
    if organization_ids:
        visible.append(col(HubProject.organization_id).in_(organization_ids))
    if learner_id_in:
        visible.append(
            col(HubProject.id).in_(
                select(ProjectMember.project_id).where(col(ProjectMember.learner_id).in_(learner_id_in))
            )
        )
    if visible:
        query = query.where(or_(*visible))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    query = query.order_by(col(HubProject.created_at).desc(), col(HubProject.id)).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query)), total


def interests_of_projects(session: Session, project_ids: list[str]) -> list[ProjectInterest]:
    if not project_ids:
        return []
    return list(session.exec(select(ProjectInterest).where(col(ProjectInterest.project_id).in_(project_ids))))


def get_interest(session: Session, project_id: str, learner_id: str) -> ProjectInterest | None:
    return session.get(ProjectInterest, (project_id, learner_id))


def count_interests(session: Session, project_id: str) -> int:
    return session.exec(
        select(func.count()).select_from(ProjectInterest).where(ProjectInterest.project_id == project_id)
    ).one()


def members_of_projects(session: Session, project_ids: list[str]) -> list[ProjectMember]:
    if not project_ids:
        return []
    return list(
        session.exec(
            select(ProjectMember)
            .where(col(ProjectMember.project_id).in_(project_ids))
            .order_by(col(ProjectMember.project_id), col(ProjectMember.role).desc(), col(ProjectMember.learner_id))
        )
    )


def replace_proposed_members(session: Session, project_id: str, members: list[ProjectMember]) -> None:
    session.connection().execute(delete(ProjectMember).where(col(ProjectMember.project_id) == project_id))
    session.add_all(members)
    session.flush()


def people_in_confirmed_teams(session: Session, *, except_project_ids: list[str]) -> set[str]:
    """Learners and mentors already in a confirmed team of another open project: not free for a new one."""
    query = (
        select(ProjectMember.learner_id)
        .join(HubProject, col(HubProject.id) == col(ProjectMember.project_id))
        .where(ProjectMember.state == "confirmed", HubProject.state == "team_confirmed")
    )
    if except_project_ids:
        query = query.where(col(ProjectMember.project_id).not_in(except_project_ids))
    return set(session.exec(query))


def learners(session: Session) -> list[ExpertFeature]:
    """Active DX人材 who finished the case study: who may join a hub team."""
    return list(
        session.exec(
            select(ExpertFeature)
            .where(
                ExpertFeature.kind == "dx_talent",
                col(ExpertFeature.active).is_(True),
                col(ExpertFeature.case_study_completed).is_(True),
            )
            .order_by(col(ExpertFeature.expert_id))
        )
    )


def active_sekisupe(session: Session) -> list[ExpertFeature]:
    """Active 登録セキスペ: the mentors a security project may get."""
    return list(
        session.exec(
            select(ExpertFeature)
            .where(ExpertFeature.kind == "sekisupe", col(ExpertFeature.active).is_(True))
            .order_by(col(ExpertFeature.expert_id))
        )
    )


def requests_by_id(session: Session, *, exclude_status: str, limit: int, offset: int) -> tuple[list[SmeRequest], int]:
    """Requests in id order (stable pages while requests change) and their total, without one status
    (drafts: never published): what the search service's requests index should hold."""
    query = select(SmeRequest).where(col(SmeRequest.status) != exclude_status)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    return list(session.exec(query.order_by(col(SmeRequest.id)).offset(offset).limit(limit))), total


def hub_projects_by_id(session: Session, *, limit: int, offset: int) -> tuple[list[HubProject], int]:
    """Every hub project in id order and their total: what the search service's projects index should hold."""
    total = session.exec(select(func.count()).select_from(HubProject)).one()
    return list(session.exec(select(HubProject).order_by(col(HubProject.id)).offset(offset).limit(limit))), total

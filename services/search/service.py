"""Keeping the index in step with profiles.expert.published, and answering public searches."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from services.search.engine import SearchEngine, SearchQuery
from services.search.models import IndexedExpert, ProcessedEvent
from tsunagu.contracts import ExpertPublicV1, parse_event_data
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import claim_event


def apply_published(session: Session, engine: SearchEngine, envelopes: list[EventEnvelope], consumer: str) -> None:
    """Index the public view of each expert, unless we already hold that version or a newer one.

    One index write for the whole batch, before the database commit: if the commit fails the events are
    redelivered and the same documents are written again (an upsert), so the two never disagree for long.
    """
    newest: dict[str, tuple[int, ExpertPublicV1]] = {}
    for envelope in envelopes:
        public: ExpertPublicV1 = parse_event_data(envelope, Subjects.EXPERT_PUBLISHED)
        if not claim_event(session, ProcessedEvent, envelope.id, consumer):
            continue
        held = newest.get(public.id)
        if held is None or held[0] < envelope.entity_version:
            newest[public.id] = (envelope.entity_version, public)
    states = {state.expert_id: state for state in _indexed_states(session, list(newest))}
    documents = []
    now = datetime.now(UTC)
    for expert_id, (version, public) in newest.items():
        state = states.get(expert_id)
        if state is not None and state.entity_version >= version:
            continue
        documents.append(public.model_dump(mode="json"))
        state = state or IndexedExpert(expert_id=expert_id, entity_version=version)
        state.entity_version = version
        state.indexed_at = now
        session.add(state)
    if documents:
        engine.upsert(documents)


def _indexed_states(session: Session, expert_ids: list[str]) -> list[IndexedExpert]:
    if not expert_ids:
        return []
    return list(session.exec(select(IndexedExpert).where(col(IndexedExpert.expert_id).in_(expert_ids))))


def search_experts(engine: SearchEngine, query: SearchQuery) -> dict:
    result = engine.search(query)
    return {"items": result.hits, "total": result.total, "limit": query.limit, "offset": query.offset}

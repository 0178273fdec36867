"""Keeping the index in step with profiles.expert.published, and answering public searches."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from services.search.engine import SearchEngine, SearchQuery
from services.search.models import IndexedExpert, ProcessedEvent
from tsunagu.contracts import ExpertPublicV1, parse_event_data
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.outbox import claim_event


def apply_published(session: Session, engine: SearchEngine, envelope: EventEnvelope, consumer: str) -> None:
    """Index the public view of one expert, unless we already hold this version or a newer one.

    The index write happens before the database commit: if the commit fails the event is redelivered
    and the same document is written again (an upsert), so the two never disagree for long.
    """
    public: ExpertPublicV1 = parse_event_data(envelope, Subjects.EXPERT_PUBLISHED)
    if not claim_event(session, ProcessedEvent, envelope.id, consumer):
        return
    state = session.get(IndexedExpert, public.id)
    if state is not None and state.entity_version >= envelope.entity_version:
        return
    engine.upsert([public.model_dump(mode="json")])
    if state is None:
        state = IndexedExpert(expert_id=public.id, entity_version=envelope.entity_version)
    state.entity_version = envelope.entity_version
    state.indexed_at = datetime.now(UTC)
    session.add(state)


def search_experts(engine: SearchEngine, query: SearchQuery) -> dict:
    result = engine.search(query)
    return {"items": result.hits, "total": result.total, "limit": query.limit, "offset": query.offset}

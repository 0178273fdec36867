"""The index consumers: ``profiles.expert.published`` (durable ``search-index`` on the PROFILES stream) keeps
the experts index in step with the public view of every expert; the request and hub project events
(durable ``search-broker-index`` on the MATCHING stream) keep the broker indexes (requests, projects).

What a request or project document holds is decided here, field by field (request_document,
project_document): the title, a summary, the region, topics, skills or roles, on-site, state and the SME's
name only when the event carries it (the producer sends it only when the SME allowed it); never the ids of
the people concerned, the actor, a cancellation reason or anything else the event carries for notifications.

Each event is applied once per consumer (processed_events), and only when it is newer than the version the
index holds (indexed_experts): JetStream may redeliver, and events of one expert may arrive out of order. A
whole fetched batch is one transaction and one engine write; if it fails, the kernel retries it event by
event, so one bad event cannot hold back the rest.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.search import repository
from services.search.engine import SearchEngine
from tsunagu import reference
from tsunagu.contracts import (
    ExpertPublicV1,
    HubProjectChangedV1,
    RequestChangedV1,
    RequestSubmittedV1,
    parse_event_data,
)
from tsunagu.db import session_scope
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.messaging import ConsumerSpec

INDEX_CONSUMER = "search-index"
BROKER_INDEX_CONSUMER = "search-broker-index"
REQUEST_SUBJECTS = [
    Subjects.REQUEST_SUBMITTED,
    Subjects.REQUEST_UPDATED,
    Subjects.REQUEST_CANCELLED,
    Subjects.REQUEST_MATCHED,
    Subjects.REQUEST_REOPENED,
    Subjects.REQUEST_COMPLETED,
]
PROJECT_SUBJECTS = [
    Subjects.PROJECT_CREATED,
    Subjects.PROJECT_UPDATED,
    Subjects.PROJECT_TEAM_PROPOSED,
    Subjects.PROJECT_TEAM_CONFIRMED,
    Subjects.PROJECT_CLOSED,
]
# A request waiting for a match (submitted, or ranked by the scorer) is "open" in the index.
OPEN_REQUEST_STATES = ("submitted", "ranked")


def index_published(session: Session, engine: SearchEngine, envelopes: list[EventEnvelope]) -> None:
    """Index the public view of each expert, unless we already hold that version or a newer one.

    One index write for the whole batch, before the database commit: if the commit fails the events are
    redelivered and the same documents are written again (an upsert), so the two never disagree for long.
    """
    newest: dict[str, tuple[int, ExpertPublicV1]] = {}
    for envelope in envelopes:
        public: ExpertPublicV1 = parse_event_data(envelope, Subjects.EXPERT_PUBLISHED)
        if not repository.claim(session, envelope.id, INDEX_CONSUMER):
            continue
        held = newest.get(public.id)
        if held is None or held[0] < envelope.entity_version:
            newest[public.id] = (envelope.entity_version, public)
    states = repository.indexed_versions(session, list(newest))
    documents = []
    now = datetime.now(UTC)
    for expert_id, (version, public) in newest.items():
        state = states.get(expert_id)
        if state is not None and state.entity_version >= version:
            continue
        documents.append(public.model_dump(mode="json"))
        repository.mark_indexed(session, state, expert_id, version, now)
    if documents:
        engine.upsert(documents)


def _topic_labels(topics: list[str]) -> list[str]:
    known = reference.topics()
    return [known[t].label_ja for t in topics if t in known]


def request_document(envelope: EventEnvelope) -> dict[str, Any]:
    """The requests index document of a request event (submitted, or RequestChangedV1)."""
    if envelope.type == Subjects.REQUEST_SUBMITTED:
        submitted: RequestSubmittedV1 = parse_event_data(envelope, envelope.type)
        return request_document_of(
            submitted.request_id, submitted.title or "", "submitted", None, submitted, envelope.occurred_at
        )
    changed: RequestChangedV1 = parse_event_data(envelope, envelope.type)
    return request_document_of(
        changed.request_id, changed.request_title, changed.status, changed.sme_name, changed, envelope.occurred_at
    )


def request_document_of(
    request_id: str, title: str, status: str, sme_name: str | None, data: Any, occurred_at: datetime
) -> dict[str, Any]:
    """The requests index document from a request's indexed fields (``data``: summary, prefecture,
    delivery, topics, skills, industry, updated_at), as an event or matching's search source carries them."""
    delivery = data.delivery or "either"
    return {
        "id": request_id,
        "title": title,
        "summary": data.summary,
        "prefectures": [data.prefecture],
        "onsite": delivery in ("onsite", "either"),
        "remote": delivery in ("remote", "either"),
        "topics": list(data.topics),
        "topic_labels": _topic_labels(list(data.topics)),
        "skills": list(data.skills),
        "industries": [data.industry] if data.industry else [],
        "sme_name": sme_name,
        "state": "open" if status in OPEN_REQUEST_STATES else status,
        "active": True,
        "updated_at": (data.updated_at or occurred_at).isoformat(),
    }


def project_document(envelope: EventEnvelope) -> dict[str, Any]:
    """The projects index document of a hub project event (HubProjectChangedV1)."""
    return project_document_of(parse_event_data(envelope, envelope.type))


def project_document_of(project: HubProjectChangedV1) -> dict[str, Any]:
    """The projects index document of a project's data (an event's, or matching's search source)."""
    roles = reference.dss_roles()
    return {
        "id": project.project_id,
        "title": project.title,
        "summary": project.summary,
        "prefectures": [project.prefecture],
        "onsite": True,
        "remote": project.remote_ok,
        "topics": list(project.topics),
        "topic_labels": _topic_labels(list(project.topics)),
        "dss_roles": list(project.skills),
        "role_labels": [roles[r].label_ja for r in project.skills if r in roles],
        "sme_name": project.sme_name,
        "hub_organization_id": project.hub_organization_id,
        "team_size": project.team_size,
        "start_on": project.start_on.isoformat() if project.start_on else None,
        "weeks": project.weeks,
        "state": project.state,
        "active": True,
        "updated_at": project.occurred_at.isoformat(),
    }


def index_broker_documents(session: Session, engines: dict[str, SearchEngine], envelopes: list[EventEnvelope]) -> None:
    """Index requests and hub projects, unless the index holds a newer version (the same version is
    applied again: a request's submitted and updated events share one version and one content)."""
    newest: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
    for envelope in envelopes:
        is_project = envelope.type.startswith(Subjects.PROJECT_PREFIX + ".")
        index = "projects" if is_project else "requests"
        document = project_document(envelope) if is_project else request_document(envelope)
        if not repository.claim(session, envelope.id, BROKER_INDEX_CONSUMER):
            continue
        key = (index, document["id"])
        held = newest.get(key)
        if held is None or held[0] <= envelope.entity_version:
            newest[key] = (envelope.entity_version, document)
    now = datetime.now(UTC)
    for index in ("requests", "projects"):
        mine = {doc_id: item for (i, doc_id), item in newest.items() if i == index}
        states = repository.document_versions(session, index, list(mine))
        documents = []
        for doc_id, (version, document) in mine.items():
            state = states.get(doc_id)
            if state is not None and state.entity_version > version:
                continue
            documents.append(document)
            repository.mark_document_indexed(session, state, index, doc_id, version, now)
        if documents:
            engines[index].upsert(documents)


class BrokerIndexConsumer:
    """The handlers of the ``search-broker-index`` durable (requests and hub projects)."""

    def __init__(self, database: Engine, engines: dict[str, SearchEngine]) -> None:
        self.database = database
        self.engines = engines

    def apply(self, envelopes: list[EventEnvelope]) -> None:
        with session_scope(self.database) as session:
            index_broker_documents(session, self.engines, envelopes)

    async def handle(self, envelope: EventEnvelope) -> None:
        await asyncio.to_thread(self.apply, [envelope])

    async def handle_batch(self, envelopes: list[EventEnvelope]) -> None:
        await asyncio.to_thread(self.apply, envelopes)


class IndexConsumer:
    """The handlers of the ``search-index`` durable: one transaction per call, run in a worker thread (the
    engine and the database sessions are synchronous)."""

    def __init__(self, database: Engine, engine: SearchEngine) -> None:
        self.database = database
        self.engine = engine

    def apply(self, envelopes: list[EventEnvelope]) -> None:
        with session_scope(self.database) as session:
            index_published(session, self.engine, envelopes)

    async def handle(self, envelope: EventEnvelope) -> None:
        await asyncio.to_thread(self.apply, [envelope])

    async def handle_batch(self, envelopes: list[EventEnvelope]) -> None:
        await asyncio.to_thread(self.apply, envelopes)


def consumer_specs(database: Engine, engines: dict[str, SearchEngine]) -> list[ConsumerSpec]:
    """Every consumer of the search service: the experts index and the broker indexes."""
    consumer = IndexConsumer(database, engines["experts"])
    broker = BrokerIndexConsumer(database, engines)
    return [
        ConsumerSpec(
            durable=INDEX_CONSUMER,
            stream="PROFILES",
            subjects=[Subjects.EXPERT_PUBLISHED],
            handler=consumer.handle,
            batch_handler=consumer.handle_batch,
        ),
        ConsumerSpec(
            durable=BROKER_INDEX_CONSUMER,
            stream="MATCHING",
            subjects=[*REQUEST_SUBJECTS, *PROJECT_SUBJECTS],
            handler=broker.handle,
            batch_handler=broker.handle_batch,
        ),
    ]

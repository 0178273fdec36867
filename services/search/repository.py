"""Every query of the search service on its own database: which version of each expert, request and hub
project the indexes hold, and which events the index consumers have already applied. (The index itself is the engine's: engine/.)"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, func, select

from services.search.models import IndexedDocument, IndexedExpert, ProcessedEvent
from tsunagu.outbox import claim_event


def claim(session: Session, event_id: str, consumer: str) -> bool:
    """True the first time ``consumer`` sees this event (recorded in the caller's transaction)."""
    return claim_event(session, ProcessedEvent, event_id, consumer)


def indexed_versions(session: Session, expert_ids: list[str]) -> dict[str, IndexedExpert]:
    """The index state of these experts, by id (experts never indexed are absent)."""
    if not expert_ids:
        return {}
    rows = session.exec(select(IndexedExpert).where(col(IndexedExpert.expert_id).in_(expert_ids)))
    return {row.expert_id: row for row in rows}


def mark_indexed(
    session: Session, state: IndexedExpert | None, expert_id: str, version: int, at: datetime
) -> IndexedExpert:
    """Record that the index now holds ``version`` of the expert (``state``: its row, if it has one)."""
    state = state or IndexedExpert(expert_id=expert_id, entity_version=version)
    state.entity_version = version
    state.indexed_at = at
    session.add(state)
    return state


def document_versions(session: Session, index: str, doc_ids: list[str]) -> dict[str, IndexedDocument]:
    """The index state of these requests or projects (``index``), by id (never indexed: absent)."""
    if not doc_ids:
        return {}
    rows = session.exec(
        select(IndexedDocument).where(IndexedDocument.index == index, col(IndexedDocument.doc_id).in_(doc_ids))
    )
    return {row.doc_id: row for row in rows}


def mark_document_indexed(
    session: Session, state: IndexedDocument | None, index: str, doc_id: str, version: int, at: datetime
) -> IndexedDocument:
    """Record that the ``index`` now holds ``version`` of the document (``state``: its row, if any)."""
    state = state or IndexedDocument(index=index, doc_id=doc_id, entity_version=version)
    state.entity_version = version
    state.indexed_at = at
    session.add(state)
    return state


def indexed_counts(session: Session) -> dict[str, int]:
    """How many documents each index should hold, by the version tables (for the consistency check)."""
    counts = {"experts": session.exec(select(func.count()).select_from(IndexedExpert)).one()}
    for index, count in session.exec(select(IndexedDocument.index, func.count()).group_by(IndexedDocument.index)):
        counts[index] = count
    return counts


def all_versions(session: Session, index: str) -> dict[str, int]:
    """id -> entity version of every document the index should hold."""
    if index == "experts":
        return dict(session.exec(select(IndexedExpert.expert_id, IndexedExpert.entity_version)).all())
    rows = session.exec(
        select(IndexedDocument.doc_id, IndexedDocument.entity_version).where(IndexedDocument.index == index)
    )
    return dict(rows.all())


def set_versions(session: Session, index: str, versions: dict[str, int], at: datetime) -> None:
    """Record that the index holds these versions (the reindex: one call per index)."""
    if index == "experts":
        experts = indexed_versions(session, list(versions))
        for doc_id, version in versions.items():
            mark_indexed(session, experts.get(doc_id), doc_id, version, at)
        return
    documents = document_versions(session, index, list(versions))
    for doc_id, version in versions.items():
        mark_document_indexed(session, documents.get(doc_id), index, doc_id, version, at)


def forget_versions(session: Session, index: str, doc_ids: list[str]) -> None:
    """Forget documents the index no longer holds (the reindex removed them)."""
    if not doc_ids:
        return
    if index == "experts":
        statement = delete(IndexedExpert).where(col(IndexedExpert.expert_id).in_(doc_ids))
    else:
        statement = delete(IndexedDocument).where(
            IndexedDocument.index == index, col(IndexedDocument.doc_id).in_(doc_ids)
        )
    session.exec(statement)  # type: ignore[call-overload]


def indexed_since(session: Session, index: str, since: datetime) -> set[str]:
    """Ids of the documents the consumers indexed at or after ``since`` (the reindex leaves those alone
    when they are newer than the source it read)."""
    if index == "experts":
        rows = session.exec(select(IndexedExpert.expert_id).where(IndexedExpert.indexed_at >= since))
    else:
        rows = session.exec(
            select(IndexedDocument.doc_id).where(IndexedDocument.index == index, IndexedDocument.indexed_at >= since)
        )
    return set(rows.all())

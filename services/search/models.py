"""Tables of the search service: which version of each expert the index holds (the index itself lives
in the search engine: the embedded SQLite FTS file or Meilisearch)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field

from tsunagu.db import UtcDateTime, service_base, utcnow
from tsunagu.outbox import ProcessedEventFields

SearchModel = service_base("search")


class ProcessedEvent(ProcessedEventFields, SearchModel, table=True):
    __tablename__ = "processed_events"


class IndexedExpert(SearchModel, table=True):
    __tablename__ = "indexed_experts"

    expert_id: str = Field(primary_key=True, max_length=64)
    entity_version: int
    indexed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class IndexedDocument(SearchModel, table=True):
    """Which version of each request or hub project the broker indexes hold (``index``: requests or
    projects), so an older event never overwrites a newer one."""

    __tablename__ = "indexed_documents"

    index: str = Field(primary_key=True, max_length=20)
    doc_id: str = Field(primary_key=True, max_length=64)
    entity_version: int
    indexed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

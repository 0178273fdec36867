"""Tables of the search service: which version of each expert the index holds (the index itself lives
in the search engine: the embedded SQLite FTS file or Meilisearch)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field

from tsunagu.db import service_base, utcnow
from tsunagu.outbox import ProcessedEventFields

SearchModel = service_base("search")


class ProcessedEvent(ProcessedEventFields, SearchModel, table=True):
    __tablename__ = "processed_events"


class IndexedExpert(SearchModel, table=True):
    __tablename__ = "indexed_experts"

    expert_id: str = Field(primary_key=True, max_length=64)
    entity_version: int
    indexed_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))

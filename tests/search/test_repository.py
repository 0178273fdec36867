"""The search service's queries (services/search/repository.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.search import repository
from tsunagu.db import session_scope


def test_an_event_is_claimed_once_per_consumer(database: Engine) -> None:
    with session_scope(database) as session:
        assert repository.claim(session, "event-1", "search-index")
    with session_scope(database) as session:
        assert not repository.claim(session, "event-1", "search-index")
        assert repository.claim(session, "event-1", "another-consumer")


def test_indexed_versions_reads_back_what_was_marked(database: Engine) -> None:
    at = datetime(2024, 4, 1, tzinfo=UTC)
    with session_scope(database) as session:
        assert repository.indexed_versions(session, []) == {}
        repository.mark_indexed(session, None, "expert-a", 1, at)
        repository.mark_indexed(session, None, "expert-b", 4, at)
    with session_scope(database) as session:
        states = repository.indexed_versions(session, ["expert-a", "expert-b", "expert-unknown"])
        assert {expert_id: state.entity_version for expert_id, state in states.items()} == {
            "expert-a": 1,
            "expert-b": 4,
        }
        repository.mark_indexed(session, states["expert-a"], "expert-a", 2, at)
    with Session(database) as session:
        assert repository.indexed_versions(session, ["expert-a"])["expert-a"].entity_version == 2

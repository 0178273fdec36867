"""The index consumer (services/search/consumers.py): published events reach the index once, in version
order, a batch at a time."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.search.consumers import IndexConsumer, consumer_specs, index_broker_documents, index_published
from services.search.engine import SearchEngine
from services.search.models import IndexedExpert
from tests.search.conftest import Published
from tsunagu.contracts import PermanentEventError, RequestSubmittedV1
from tsunagu.db import session_scope
from tsunagu.events import EventEnvelope, Subjects


def apply(database: Engine, index: SearchEngine, *envelopes: EventEnvelope) -> None:
    with session_scope(database) as session:
        index_published(session, index, list(envelopes))


def held_version(database: Engine, expert_id: str) -> int | None:
    with Session(database) as session:
        state = session.get(IndexedExpert, expert_id)
        return state.entity_version if state else None


def test_a_published_expert_is_indexed_as_published(database, index, published: Published) -> None:
    event = published(1, name="索引 花子")
    apply(database, index, event)
    assert index.get(event.subject_id) == event.data
    assert held_version(database, event.subject_id) == 1


def test_a_redelivered_event_is_applied_once(database, index, published: Published) -> None:
    event = published(1)
    apply(database, index, event)
    index.delete([event.subject_id])  # had the event been applied again, the document would be back
    apply(database, index, event)
    assert index.get(event.subject_id) is None


def test_an_older_version_never_replaces_a_newer_one(database, index, published: Published) -> None:
    newer = published(2, name="新しい 名前")
    older = published(1, id=newer.subject_id, name="古い 名前")
    apply(database, index, newer)
    apply(database, index, older)
    assert index.get(newer.subject_id)["name"] == "新しい 名前"
    assert held_version(database, newer.subject_id) == 2


def test_a_batch_keeps_the_newest_version_of_each_expert_in_one_write(
    database, index, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = published(1, name="版 一")
    third = published(3, id=first.subject_id, name="版 三")
    second = published(2, id=first.subject_id, name="版 二")
    other = published(1, name="別 人")
    writes: list[list[dict]] = []
    upsert = index.upsert
    monkeypatch.setattr(index, "upsert", lambda docs: writes.append(docs) or upsert(docs))

    apply(database, index, first, third, second, other)

    assert [[doc["name"] for doc in docs] for docs in writes] == [["版 三", "別 人"]]
    assert held_version(database, first.subject_id) == 3
    assert held_version(database, other.subject_id) == 1


def test_an_event_of_another_type_is_refused_without_writing(database, index, published: Published) -> None:
    event = published(1).model_copy(update={"type": Subjects.EXPERT_UPSERTED})
    with pytest.raises(PermanentEventError):
        apply(database, index, event)
    assert index.count() == 0
    assert held_version(database, event.subject_id) is None


async def test_the_handlers_commit_one_transaction_per_call(database, index, published: Published) -> None:
    consumer = IndexConsumer(database, index)
    single, first, second = published(1), published(1), published(1)
    await consumer.handle(single)
    await consumer.handle_batch([first, second])
    assert {held_version(database, e.subject_id) for e in (single, first, second)} == {1}
    assert index.count() == 3


def test_the_service_consumes_on_two_durables(database, index, broker_indexes) -> None:
    experts, brokers = consumer_specs(database, {"experts": index, **broker_indexes})
    # The durable's name lives on the server: renaming it would replay every event into the index.
    assert (experts.durable, experts.stream, experts.subjects) == (
        "search-index",
        "PROFILES",
        [Subjects.EXPERT_PUBLISHED],
    )
    assert (brokers.durable, brokers.stream) == ("search-broker-index", "MATCHING")
    assert Subjects.REQUEST_SUBMITTED in brokers.subjects and Subjects.PROJECT_CLOSED in brokers.subjects
    assert Subjects.REQUEST_RANKED not in brokers.subjects  # carries nothing the index shows
    assert experts.batch_handler is not None and brokers.batch_handler is not None


# -- the broker indexes: requests and hub projects ---------------------------------------------------------


def apply_broker(database: Engine, indexes: dict[str, SearchEngine], *envelopes: EventEnvelope) -> None:
    with session_scope(database) as session:
        index_broker_documents(session, indexes, list(envelopes))


def test_a_request_is_indexed_with_what_brokers_search_and_nothing_else(
    database, broker_indexes, request_event
) -> None:
    event = request_event(Subjects.REQUEST_UPDATED, 2, reason="社外秘の理由")
    apply_broker(database, broker_indexes, event)
    doc = broker_indexes["requests"].get(event.subject_id)
    assert doc["title"] == "ランサムウェア被害の初動対応" and doc["state"] == "open"
    assert doc["prefectures"] == ["13"] and doc["onsite"] is True and doc["remote"] is True
    assert doc["topic_labels"] == ["ランサムウェア対策"] and doc["industries"] == ["製造業"]
    assert doc["sme_name"] is None
    held = repr(doc)
    for secret in ("org-secret-1", "sme-user-secret", "actor-secret", "社外秘"):
        assert secret not in held


def test_a_submitted_request_is_indexed_from_its_submitted_event(database, broker_indexes) -> None:
    data = RequestSubmittedV1(
        request_id="r-1", prefecture="01", delivery="onsite", topics=["education"], title="社員教育", summary="年1回"
    )
    event = EventEnvelope.for_change(Subjects.REQUEST_SUBMITTED, "matching", "r-1", 1, data)
    apply_broker(database, broker_indexes, event)
    doc = broker_indexes["requests"].get("r-1")
    assert (doc["title"], doc["state"], doc["onsite"], doc["remote"]) == ("社員教育", "open", True, False)


def test_request_states_follow_the_newest_event(database, broker_indexes, request_event) -> None:
    opened = request_event(Subjects.REQUEST_UPDATED, 2)
    matched = request_event(Subjects.REQUEST_MATCHED, 3, request_id=opened.subject_id, status="matched")
    apply_broker(database, broker_indexes, matched, opened)  # out of order
    assert broker_indexes["requests"].get(opened.subject_id)["state"] == "matched"
    stale = request_event(Subjects.REQUEST_CANCELLED, 1, request_id=opened.subject_id, status="cancelled")
    apply_broker(database, broker_indexes, stale)
    assert broker_indexes["requests"].get(opened.subject_id)["state"] == "matched"


def test_a_hub_project_is_indexed_without_its_members(database, broker_indexes, project_event) -> None:
    event = project_event(Subjects.PROJECT_CREATED, 1, sme_name="株式会社なにわ製作所")
    apply_broker(database, broker_indexes, event)
    doc = broker_indexes["projects"].get(event.subject_id)
    assert doc["title"] == "受発注データの可視化" and doc["role_labels"] == ["データサイエンティスト"]
    assert doc["sme_name"] == "株式会社なにわ製作所"  # the producer sends it only when allowed
    assert "learner-secret" not in repr(doc) and "member_user_ids" not in doc
    closed = project_event(Subjects.PROJECT_CLOSED, 2, project_id=event.subject_id, state="closed")
    apply_broker(database, broker_indexes, closed)
    assert broker_indexes["projects"].get(event.subject_id)["state"] == "closed"


def test_broker_events_are_applied_once(database, broker_indexes, request_event) -> None:
    event = request_event()
    apply_broker(database, broker_indexes, event)
    broker_indexes["requests"].delete([event.subject_id])
    apply_broker(database, broker_indexes, event)
    assert broker_indexes["requests"].get(event.subject_id) is None

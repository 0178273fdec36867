"""Fixtures for the matching service tests: a fresh database per test (SQLite, or PostgreSQL when
TSUNAGU_TEST_POSTGRES_ADMIN_URL names a role that may create databases, as in CI), the app under FastAPI's
TestClient (NATS unreachable, so the events it writes wait in the outbox), tokens minted as the gateway
would, and the profiles events matching learns experts and organisations from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.matching.app import create_app
from services.matching.consumers import apply_projections
from services.matching.models import OutboxRecord
from services.matching.scoring.features import FeatureStore
from services.matching.settings import MIGRATIONS_DIR, SERVICE_NAME, MatchingSettings
from tests import factories
from tests.conftest import fresh_database
from tests.factories import GATEWAY_JWKS, service_token
from tsunagu.auth import Principal, Role
from tsunagu.db import make_engine
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.migrations import upgrade
from tsunagu.natsserver import free_port


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, "matching") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> MatchingSettings:
    upgrade(MIGRATIONS_DIR, database_url)
    return MatchingSettings(
        TSUNAGU_ENV="test",
        TSUNAGU_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nothing listens: events wait in the outbox
        TSUNAGU_GATEWAY_JWKS=GATEWAY_JWKS,
    )


@pytest.fixture
def engine(settings: MatchingSettings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url_for(SERVICE_NAME))
    yield engine
    engine.dispose()


@pytest.fixture
def client(settings: MatchingSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


Auth = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: MatchingSettings) -> Auth:
    """auth(Role.SME, "sme-1", prefectures=[...]) -> headers with a token signed for matching."""

    def headers(role: Role, sub: str | None = None, prefectures: list[str] | None = None) -> dict[str, str]:
        principal = Principal(sub=sub or f"{role.value}-user", role=role, prefectures=prefectures or [])
        token = service_token(principal, SERVICE_NAME)
        return {"Authorization": f"Bearer {token}"}

    return headers


def envelope(subject: str, data: dict[str, Any], *, subject_id: str, version: int = 1) -> EventEnvelope:
    """An event as profiles (or matching itself) would publish it."""
    return EventEnvelope(
        type=subject, source=subject.split(".", 1)[0], subject_id=subject_id, entity_version=version, data=data
    )


def expert_event(version: int = 1, **overrides: Any) -> EventEnvelope:
    data = factories.expert_features_data(**overrides)
    return envelope(Subjects.EXPERT_UPSERTED, data, subject_id=data["expert_id"], version=version)


def organization_event(version: int = 1, **overrides: Any) -> EventEnvelope:
    data = factories.organization_data(**overrides)
    return envelope(Subjects.ORGANIZATION_UPSERTED, data, subject_id=data["organization_id"], version=version)


def project(engine: Engine, *events: EventEnvelope) -> None:
    """Apply profiles events to matching's projections, as its consumer does."""
    apply_projections(engine, list(events))


def outbox(engine: Engine, subject: str | None = None) -> list[EventEnvelope]:
    """The events written so far (oldest first), optionally of one subject."""
    with Session(engine) as session:
        statement = select(OutboxRecord).order_by(col(OutboxRecord.seq))
        if subject:
            statement = statement.where(OutboxRecord.subject == subject)
        return [EventEnvelope.from_json(row.payload) for row in session.exec(statement).all()]


def field_names(response: Any) -> set[str]:
    return {field["field"] for field in response.json()["error"]["fields"]}


@contextmanager
def writing_during_refresh(store: FeatureStore, write: Callable[[], None]) -> Iterator[FeatureStore]:
    """The store, with ``write`` (another transaction, committed) run by its refresh: the refresh lies between
    a scorer batch's read and its write, so this is a change that lands in between. Restored on exit."""
    refresh = store.refresh

    def refresh_then_write():
        matrix = refresh()
        write()
        return matrix

    store.refresh = refresh_then_write  # type: ignore[method-assign]
    try:
        yield store
    finally:
        store.refresh = refresh  # type: ignore[method-assign]

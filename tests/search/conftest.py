"""Fixtures for the search service tests: a fresh migrated database and fresh embedded indexes per test
(the engine contract suite builds its own engines), the app under FastAPI's TestClient, tokens of each
role, and events as the profiles and matching services send them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.search.app import create_app
from services.search.engine import SearchEngine, make_engine
from services.search.settings import MIGRATIONS_DIR, SERVICE_NAME, SearchSettings
from tests import factories
from tests.conftest import fresh_database
from tests.factories import GATEWAY_JWKS, service_token
from tsunagu.auth import Principal, Role
from tsunagu.contracts import ExpertPublicV1, HubProjectChangedV1, RequestChangedV1
from tsunagu.db import make_engine as make_database
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.migrations import upgrade
from tsunagu.natsserver import free_port


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """The search service's own database: SQLite, or PostgreSQL when the suite runs on it."""
    with fresh_database(tmp_path, "search") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> SearchSettings:
    settings = SearchSettings(
        TSUNAGU_ENV="test",
        TSUNAGU_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nothing listens: the index consumer never starts
        TSUNAGU_GATEWAY_JWKS=GATEWAY_JWKS,
    )
    upgrade(MIGRATIONS_DIR, settings.database_url_for(SERVICE_NAME))
    return settings


@pytest.fixture
def database(settings: SearchSettings) -> Iterator[Engine]:
    engine = make_database(settings.database_url_for(SERVICE_NAME))
    yield engine
    engine.dispose()


@pytest.fixture
def index(settings: SearchSettings) -> Iterator[SearchEngine]:
    """The embedded index where the app keeps it (data_dir), so what a test writes the app's routes read."""
    engine = make_engine("embedded", data_dir=settings.data_dir)
    engine.setup()
    yield engine
    engine.close()


@pytest.fixture
def client(settings: SearchSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


Published = Callable[..., EventEnvelope]


@pytest.fixture
def published() -> Published:
    """``published(version, **data overrides)``: a profiles.expert.published envelope."""

    def build(version: int = 1, **overrides: Any) -> EventEnvelope:
        data = ExpertPublicV1(**factories.expert_published_data(**overrides))
        return EventEnvelope.for_change(Subjects.EXPERT_PUBLISHED, "profiles", data.id, version, data)

    return build


@pytest.fixture
def broker_indexes(settings: SearchSettings) -> Iterator[dict[str, SearchEngine]]:
    """The requests and projects indexes where the app keeps them (data_dir)."""
    engines = {
        name: make_engine("embedded", data_dir=settings.data_dir, index=name) for name in ("requests", "projects")
    }
    for engine in engines.values():
        engine.setup()
    yield engines
    for engine in engines.values():
        engine.close()


Auth = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: SearchSettings) -> Auth:
    """auth(Role.BROKER, prefectures=[...]) -> headers with a token signed for the search service."""

    def headers(role: Role, sub: str | None = None, prefectures: list[str] | None = None) -> dict[str, str]:
        principal = Principal(sub=sub or f"{role.value}-user", role=role, prefectures=prefectures or [])
        token = service_token(principal, SERVICE_NAME)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def request_event() -> Callable[..., EventEnvelope]:
    """``request_event(subject, version, **data overrides)``: a matching.request.* RequestChangedV1 envelope."""

    def build(subject: str = Subjects.REQUEST_UPDATED, version: int = 1, **overrides: Any) -> EventEnvelope:
        data = RequestChangedV1(**factories.request_changed_data(**overrides))
        return EventEnvelope.for_change(subject, "matching", data.request_id, version, data)

    return build


@pytest.fixture
def project_event() -> Callable[..., EventEnvelope]:
    """``project_event(subject, version, **data overrides)``: a matching.project.* HubProjectChangedV1 envelope."""

    def build(subject: str = Subjects.PROJECT_CREATED, version: int = 1, **overrides: Any) -> EventEnvelope:
        data = HubProjectChangedV1(**factories.hub_project_data(**overrides))
        return EventEnvelope.for_change(subject, "matching", data.project_id, version, data)

    return build

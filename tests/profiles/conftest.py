"""Fixtures for the profiles service tests: a fresh database per test (SQLite, or PostgreSQL when
TSUNAGU_TEST_POSTGRES_ADMIN_URL names a role that may create databases, as in CI), the app under
FastAPI's TestClient, and tokens minted as the gateway would."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.profiles.app import MIGRATIONS_DIR, create_app
from services.profiles.models import OutboxRecord
from services.profiles.settings import ProfilesSettings
from tsunagu.auth import Principal, Role, issue_token
from tsunagu.db import make_engine
from tsunagu.events import EventEnvelope
from tsunagu.migrations import upgrade
from tsunagu.natsserver import free_port

SECRET = "profiles-test-secret-0123456789-abcdefghij"


def expert_body(**overrides: Any) -> dict[str, Any]:
    """The minimal 登録セキスペ body the end-to-end tests and the demo loader rely on."""
    body = {
        "kind": "sekisupe",
        "registration_number": "012345",
        "name": "山田 太郎",
        "name_kana": "やまだ たろう",
        "registration_date": "2024-04-01",
        "prefectures": ["13"],
        "onsite": True,
        "remote": True,
        "strengths": [{"topic": "ransomware", "depth": 3}],
        "skills": ["AWS"],
        "capacity": 3,
    }
    body.update(overrides)
    return body


def dx_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "kind": "dx_talent",
        "external_id": "MDQ-2024-00001",
        "name": "佐藤 花子",
        "name_kana": "さとう はなこ",
        "prefectures": ["大阪府"],
        "remote": True,
        "dss_roles": [{"role": "data_scientist", "level": 2}],
        "programme": {"status": "graduate", "cohort_year": 2024, "case_study_completed": True, "regional_collaboration": True},
        "availability": "available",
    }
    body.update(overrides)
    return body


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    admin_url = os.environ.get("TSUNAGU_TEST_POSTGRES_ADMIN_URL")
    if not admin_url:
        yield f"sqlite:///{tmp_path / 'profiles.sqlite3'}"
        return
    name = f"tsunagu_profiles_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ProfilesSettings:
    upgrade(MIGRATIONS_DIR, database_url)
    return ProfilesSettings(
        TSUNAGU_ENV="test",
        TSUNAGU_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nothing listens: events wait in the outbox
        TSUNAGU_TOKEN_SECRET=SECRET,
    )


@pytest.fixture
def engine(settings: ProfilesSettings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url_for("profiles"))
    yield engine
    engine.dispose()


@pytest.fixture
def client(settings: ProfilesSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


Auth = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: ProfilesSettings) -> Auth:
    """auth(Role.EXPERT, "user-1", prefectures=[...]) -> headers with a token signed for profiles."""

    def headers(role: Role, sub: str | None = None, prefectures: list[str] | None = None) -> dict[str, str]:
        principal = Principal(sub=sub or f"{role.value}-user", role=role, prefectures=prefectures or [])
        token = issue_token(principal, secret=settings.token_secret, audience="profiles")
        return {"Authorization": f"Bearer {token}"}

    return headers


def outbox(engine: Engine, subject: str | None = None) -> list[EventEnvelope]:
    """The events written so far (oldest first), optionally of one subject."""
    with Session(engine) as session:
        statement = select(OutboxRecord).order_by(col(OutboxRecord.seq))
        if subject:
            statement = statement.where(OutboxRecord.subject == subject)
        return [EventEnvelope.from_json(row.payload) for row in session.exec(statement).all()]


def field_names(response: Any) -> set[str]:
    return {field["field"] for field in response.json()["error"]["fields"]}

"""Fixtures for the profiles service tests: a fresh database per test (SQLite, or PostgreSQL when
TSUNAGU_TEST_POSTGRES_ADMIN_URL names a role that may create databases, as in CI), the app under
FastAPI's TestClient, and tokens minted as the gateway would."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from services.profiles.app import create_app
from services.profiles.csv_format import EXPORT_HEADER, body_cells
from services.profiles.importer import import_experts
from services.profiles.models import Expert, OutboxRecord
from services.profiles.settings import MIGRATIONS_DIR, ProfilesSettings
from tests import factories
from tests.conftest import fresh_database
from tests.factories import GATEWAY_JWKS, service_token
from tsunagu.auth import Principal, Role
from tsunagu.db import make_engine
from tsunagu.events import EventEnvelope
from tsunagu.migrations import upgrade
from tsunagu.natsserver import free_port


def expert_body(**overrides: Any) -> dict[str, Any]:
    """The factories' expert with the registration number these tests name (012345) unless overridden."""
    return factories.expert_body(**{"registration_number": "012345", **overrides})


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    with fresh_database(tmp_path, "profiles") as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ProfilesSettings:
    upgrade(MIGRATIONS_DIR, database_url)
    return ProfilesSettings(
        TSUNAGU_ENV="test",
        TSUNAGU_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nothing listens: events wait in the outbox
        TSUNAGU_GATEWAY_JWKS=GATEWAY_JWKS,
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
        token = service_token(principal, "profiles")
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


# --- CSV import and export --------------------------------------------------------------------


def csv_bytes(bodies: list[dict], encoding: str = "utf-8-sig", header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header or EXPORT_HEADER)
    for body in bodies:
        writer.writerow(body_cells(body))
    return out.getvalue().encode(encoding)


def run(engine: Engine, settings: ProfilesSettings, data: bytes, **options) -> dict:
    with Session(engine, expire_on_commit=False) as session:
        report = import_experts(session, settings, io.BytesIO(data), **options)
        session.commit()
    return report.as_dict()


def count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Expert)).one()


def some_bodies(n: int = 3) -> list[dict]:
    return [
        expert_body(
            registration_number=f"{300000 + index:06d}", name=f"取込 太郎{index}", contact_phone="+81-90-0000-0000"
        )
        for index in range(n)
    ] + [factories.dx_body()]


def create_listed(client: TestClient, auth: Auth, body: dict[str, Any], owner: str, **headers: str) -> Any:
    """An entry of ``owner`` that is on the list at once: created by an admin for that account (an admin
    vouches for what it enters, as the import does). An entry the expert creates waits for an admin's
    verification (tests/profiles/test_verification.py)."""
    return client.post("/experts", json=body | {"owner_user_id": owner}, headers=auth(Role.ADMIN) | headers)

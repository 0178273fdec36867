"""Fixtures for the gateway tests: a fresh gateway database per test (SQLite), the app under FastAPI's
TestClient, and the services replaced by one small in-process app (``upstream``) that says what it received
and serves an OpenAPI document of its own, so the proxy and the merged OpenAPI run without the system."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from gateway.app import create_app
from gateway.settings import MIGRATIONS_DIR, GatewaySettings
from tests.conftest import PASSWORD, fresh_database
from tests.factories import GATEWAY_KEYS
from tsunagu.auth import PublicKeys, verify_token
from tsunagu.db import make_engine, session_scope
from tsunagu.migrations import upgrade
from tsunagu.natsserver import free_port
from tsunagu.pagination import Page

SECRET = "gateway-test-secret-0123456789-abcdefghij"
GATEWAY_PUBLIC_KEYS = PublicKeys.from_jwks(GATEWAY_KEYS.public_jwks())
SERVICE_HOSTS = {"profiles": "http://profiles.test", "matching": "http://matching.test", "search": "http://search.test"}


class RequestCreate(BaseModel):
    title: str
    prefecture: str


class RequestRead(BaseModel):
    id: str
    title: str


class Hit(BaseModel):
    id: str
    name: str


class Echo(BaseModel):
    """What a service received from the gateway."""

    service: str
    method: str
    path: str
    query: list[tuple[str, str]]
    body: str
    role: str | None
    audience: str | None


def upstream_app() -> FastAPI:
    """Stands for every service: the Host header says which one was called."""
    app = FastAPI(title="upstream")

    async def echo(request: Request, authorization: str | None) -> Echo:
        service = request.headers["host"].split(".")[0]
        role = audience = None
        if authorization:
            principal = verify_token(authorization.removeprefix("Bearer "), keys=GATEWAY_PUBLIC_KEYS, audience=service)
            role, audience = principal.role.value, service
        return Echo(
            service=service,
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            body=(await request.body()).decode(),
            role=role,
            audience=audience,
        )

    @app.post("/requests", status_code=201)
    def submit(body: RequestCreate) -> RequestRead:
        return RequestRead(id="r1", title=body.title)

    @app.get("/search/experts")
    def search(q: str = "") -> Page[Hit]:
        return Page(items=[Hit(id="e1", name=q)], total=1, limit=20, offset=0)

    @app.get("/internal/only")
    def internal() -> dict[str, str]:
        return {"not": "proxied"}

    # Anything else (/experts/..., /requests/..., /organizations...): say what arrived.
    @app.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def anything(request: Request, authorization: Annotated[str | None, Header()] = None) -> Echo:
        return await echo(request, authorization)

    return app


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[GatewaySettings]:
    """The gateway's settings on a fresh database of its own: SQLite, or PostgreSQL when the suite runs on
    it (TSUNAGU_TEST_POSTGRES_ADMIN_URL)."""
    with fresh_database(tmp_path, "gateway") as database_url:
        upgrade(MIGRATIONS_DIR, database_url)
        yield _settings(tmp_path, database_url)


def _settings(tmp_path: Path, database_url: str) -> GatewaySettings:
    return GatewaySettings(
        TSUNAGU_ENV="test",
        TSUNAGU_DATA_DIR=str(tmp_path),
        DATABASE_URL=database_url,
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nothing listens
        TSUNAGU_TOKEN_SECRET=SECRET,
        TSUNAGU_SIGNING_KEYS=json.dumps(GATEWAY_KEYS.private_jwks()),
        TSUNAGU_PROFILES_URL=SERVICE_HOSTS["profiles"],
        TSUNAGU_MATCHING_URL=SERVICE_HOSTS["matching"],
        TSUNAGU_SEARCH_URL=SERVICE_HOSTS["search"],
    )


@pytest.fixture
def upstream() -> FastAPI:
    return upstream_app()


@pytest.fixture
def client(settings: GatewaySettings, upstream: FastAPI) -> Iterator[TestClient]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream))
    with TestClient(create_app(settings, upstream=http)) as test_client:
        yield test_client


@pytest.fixture
def account(settings: GatewaySettings, client: TestClient):
    """Make an account of any role directly in the database; returns its bearer header."""
    from gateway.service import ensure_user

    def _account(role: str, email: str, prefectures: list[str] | None = None) -> dict[str, Any]:
        engine = make_engine(settings.database_url_for("gateway"))
        with session_scope(engine) as session:
            ensure_user(
                session,
                email=email,
                password=PASSWORD,
                display_name=f"{role} account",
                role=role,
                prefectures=prefectures,
            )
        engine.dispose()
        response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.cookies.clear()
        return {"authorization": f"Bearer {response.json()['access_token']}"}

    return _account

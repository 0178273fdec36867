"""Shared fixtures: the whole system as real processes (nats-server + services + scorers), started
once per test session with the same code ``make run`` uses. SQLite by default; every service on
PostgreSQL when TSUNAGU_TEST_POSTGRES_ADMIN_URL names a role that may create databases (CI does)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tsunagu.natsserver import free_port
from tsunagu.runner import SERVICE_MODULES, System, SystemConfig

TEST_SECRET = "test-secret-for-the-tsunagu-suite-0123456789"
PASSWORD = "correct-horse-battery"


def wait_until(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, message: str = "condition") -> Any:
    """Poll until ``check`` returns something truthy; fail the test with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def postgres_urls() -> Iterator[dict[str, str]]:
    admin_url = os.environ.get("TSUNAGU_TEST_POSTGRES_ADMIN_URL")
    if not admin_url:
        yield {}
        return
    run = uuid.uuid4().hex[:8]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = {service: f"tsunagu_{run}_{service}" for service in SERVICE_MODULES}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0]
    yield {service: f"{base}/{name}" for service, name in names.items()}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, postgres_urls: dict[str, str]) -> Iterator[System]:
    config = SystemConfig(
        data_dir=tmp_path_factory.mktemp("tsunagu"),
        ports={name: free_port() for name in SERVICE_MODULES},
        nats_port=free_port(),
        nats_monitor_port=free_port(),
        scorer_workers=2,  # two workers share the durable consumer, as in production
        env="test",
        token_secret=TEST_SECRET,
        database_urls=postgres_urls,
        extra_env={"TSUNAGU_MAX_DELIVERIES": "3", "TSUNAGU_ACK_WAIT_SECONDS": "5", "TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT": "100000/minute"},
    )
    running = System(config)
    try:
        running.start(timeout=120)
        yield running
    finally:
        running.stop()


class Api:
    """The public API as a client sees it, plus account helpers."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.http = httpx.Client(base_url=system.url("gateway"), timeout=30)

    def register(self, role: str, name: str | None = None) -> dict[str, str]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.jp"
        response = self.http.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "display_name": name or f"{role} user", "role": role}
        )
        assert response.status_code == 201, response.text
        return self.login(email)

    def login(self, email: str) -> dict[str, str]:
        response = self.http.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        # Sign-in also sets the web UI's session cookie; the API tests say who they are explicitly.
        self.http.cookies.clear()
        return {"authorization": f"Bearer {response.json()['access_token']}"}

    def account(self, role: str, prefectures: list[str] | None = None) -> dict[str, str]:
        """Any role, brokers and admins included (created directly in the gateway's database)."""
        from gateway.users.service import ensure_user
        from tsunagu.db import make_engine, session_scope

        email = f"{role}-{uuid.uuid4().hex[:10]}@example.jp"
        engine = make_engine(self.system.database_url("gateway"))
        with session_scope(engine) as session:
            ensure_user(session, email=email, password=PASSWORD, display_name=f"{role} account", role=role, prefectures=prefectures)
        engine.dispose()
        return self.login(email)


@pytest.fixture(scope="session")
def api(system: System) -> Api:
    return Api(system)


@pytest.fixture(scope="session")
def admin(api: Api) -> dict[str, str]:
    return api.account("admin")

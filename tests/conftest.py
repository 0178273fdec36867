"""Shared fixtures: the whole system as real processes (nats-server + mail sink + services + scorers), started
once per test session with the same code ``make run`` uses. SQLite by default; every service on
PostgreSQL when TSUNAGU_TEST_POSTGRES_ADMIN_URL names a role that may create databases (CI does)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from launcher.runner import SERVICES, System, SystemConfig
from tsunagu.natsserver import free_port

TEST_SECRET = "test-secret-for-the-tsunagu-suite-0123456789"
PASSWORD = "correct-horse-battery"


def wait_until(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, message: str = "condition"
) -> Any:
    """Poll until ``check`` returns something truthy; fail the test with ``message`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def drop_database(admin: Engine, name: str) -> None:
    """Drop a test database that services may still hold connections to.

    Not ``WITH (FORCE)``: on PostgreSQL 15 that also tries to terminate autovacuum workers, which belong to the
    superuser, and a CREATEDB role may not (CI failed so once). Instead end our own role's sessions, then a plain
    DROP, which makes autovacuum step aside by itself; retried while a session is still closing."""
    for attempt in Retrying(
        retry=retry_if_exception_type(OperationalError),
        stop=stop_after_delay(30),
        wait=wait_fixed(0.2),
        reraise=True,
    ):
        with attempt, admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND usename = current_user AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


@contextmanager
def fresh_database(tmp_path: Path, service: str) -> Iterator[str]:
    """A database of the service's own for one test: a SQLite file, or a new PostgreSQL database (dropped
    afterwards) when TSUNAGU_TEST_POSTGRES_ADMIN_URL names a role that may create databases (CI does)."""
    admin_url = os.environ.get("TSUNAGU_TEST_POSTGRES_ADMIN_URL")
    if not admin_url:
        yield f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
        return
    name = f"tsunagu_{service}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        drop_database(admin, name)
        admin.dispose()


@contextmanager
def system_databases() -> Iterator[dict[str, str]]:
    """One new PostgreSQL database per service (dropped afterwards) when TSUNAGU_TEST_POSTGRES_ADMIN_URL is set;
    else nothing (the system keeps SQLite files in its data directory)."""
    admin_url = os.environ.get("TSUNAGU_TEST_POSTGRES_ADMIN_URL")
    if not admin_url:
        yield {}
        return
    run = uuid.uuid4().hex[:8]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = {service: f"tsunagu_{run}_{service}" for service in SERVICES}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield {service: f"{base}/{name}" for service, name in names.items()}
    finally:
        for name in names.values():
            drop_database(admin, name)
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_urls() -> Iterator[dict[str, str]]:
    with system_databases() as urls:
        yield urls


# The suite's own OpenID Connect provider (tests/gateway/oidc_provider.py), configured in the system's
# gateway under this name: sign-in through it is tested at API level and in Chromium.
OIDC_PROVIDER_NAME = "test-chamber"
OIDC_CLIENT_ID = "tsunagu-system"
OIDC_CLIENT_SECRET = "system-test-client-secret-0123456789"


@pytest.fixture(scope="session")
def oidc_provider():
    from tests.gateway.oidc_provider import OidcTestProvider

    provider = OidcTestProvider().start()
    yield provider
    provider.stop()


def suite_system_config(
    data_dir: Path,
    database_urls: dict[str, str],
    *,
    ports: dict[str, int] | None = None,
    gateway_env: dict[str, str] | None = None,
    **overrides: Any,
) -> SystemConfig:
    """The whole system as the tests run it (free ports, a mail sink, two scorer workers, short redelivery,
    no rate limits): the session's ``system`` and the fault tests' private systems (tests/fault) share it."""
    return SystemConfig(
        data_dir=data_dir,
        ports=ports or {name: free_port() for name in SERVICES},
        nats_port=free_port(),
        nats_monitor_port=free_port(),
        smtp_port=free_port(),  # the local SMTP sink: mails land in system.maildir
        metrics_base_port=0,  # every process serves /metrics on a free port (tests/e2e/test_observability.py)
        scorer_workers=2,  # two workers share the durable consumer, as in production
        env="test",
        token_secret=TEST_SECRET,
        database_urls=database_urls,
        extra_env={
            "TSUNAGU_MAX_DELIVERIES": "3",
            "TSUNAGU_ACK_WAIT_SECONDS": "5",
            "TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT": "100000/minute",
        },
        # Every test signs up and writes from 127.0.0.1: the limits are tested on their own (tests/gateway).
        gateway_env={
            "TSUNAGU_REGISTER_RATE_LIMIT": "100000/minute",
            "TSUNAGU_WRITE_RATE_LIMIT": "100000/minute",
            **(gateway_env or {}),
        },
        **overrides,
    )


@contextmanager
def running_system(config: SystemConfig, timeout: float = 120) -> Iterator[System]:
    """Start every process of ``config`` and stop them all afterwards, whatever happened."""
    running = System(config)
    try:
        running.start(timeout=timeout)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, postgres_urls: dict[str, str], oidc_provider) -> Iterator[System]:
    ports = {name: free_port() for name in SERVICES}
    callback = f"http://127.0.0.1:{ports['gateway']}/auth/oidc/{OIDC_PROVIDER_NAME}/callback"
    oidc_provider.add_client(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, [callback])
    oidc_settings = {
        OIDC_PROVIDER_NAME: {
            "issuer": oidc_provider.issuer,
            "client_id": OIDC_CLIENT_ID,
            "client_secret": OIDC_CLIENT_SECRET,
            "role": "sme",
            "label": "テスト商工会議所ID",
        }
    }
    config = suite_system_config(
        tmp_path_factory.mktemp("tsunagu"),
        postgres_urls,
        ports=ports,
        gateway_env={"TSUNAGU_OIDC_PROVIDERS": json.dumps(oidc_settings)},
    )
    with running_system(config) as running:
        yield running


class Api:
    """The public API as a client sees it, plus account helpers."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.http = httpx.Client(base_url=system.url("gateway"), timeout=30)

    def register(self, role: str, name: str | None = None) -> dict[str, str]:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.jp"
        response = self.http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": name or f"{role} user", "role": role},
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
        from gateway.service import ensure_user
        from tsunagu.db import make_engine, session_scope

        email = f"{role}-{uuid.uuid4().hex[:10]}@example.jp"
        engine = make_engine(self.system.database_url("gateway"))
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
        return self.login(email)


@pytest.fixture(scope="session")
def api(system: System) -> Api:
    return Api(system)


@pytest.fixture
def admin(api: Api) -> dict[str, str]:
    """A signed-in admin of the test's own: a session-wide one could be signed out by another test (logout,
    a password change) or by the fuzzer, since a token stops working when its session ends (issue 9)."""
    return api.account("admin")

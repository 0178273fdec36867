"""Fixtures of the kernel tests: a small app with the kernel's middleware and error handlers, a token
secret, and for the JetStream tests a real nats-server, a test outbox table and helpers to publish and
collect events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from fastapi import FastAPI
from pydantic import Field
from sqlalchemy.engine import Engine

from tsunagu.db import make_engine, service_base
from tsunagu.errors import install_error_handlers
from tsunagu.events import EventEnvelope
from tsunagu.messaging import NatsConnection
from tsunagu.natsserver import NatsServer, free_port
from tsunagu.outbox import OutboxFields
from tsunagu.service import RequestContextMiddleware
from tsunagu.validation import InputModel

SECRET = "unit-test-secret-0123456789-0123456789"

MessagingModel = service_base("messagingtest")


class Outbox(OutboxFields, MessagingModel, table=True):
    __tablename__ = "outbox"


class Body(InputModel):
    name: str = Field(max_length=5)
    count: int


def make_app() -> FastAPI:
    """An app with the kernel's request middleware (100-byte body limit) and bilingual error handlers."""
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware, max_body_bytes=100)
    install_error_handlers(app)

    @app.post("/items")
    def create(body: Body) -> dict:
        return body.model_dump()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    return app


@pytest.fixture()
def outbox_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    MessagingModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture()
async def connection(nats_server: NatsServer) -> AsyncIterator[NatsConnection]:
    connected = NatsConnection(nats_server.url, "test")
    await connected.start()
    await connected.wait_connected(10)
    yield connected
    await connected.close()


def envelope(subject: str = "matching.request.submitted", subject_id: str = "r1", version: int = 1) -> EventEnvelope:
    return EventEnvelope(
        type=subject, source="test", subject_id=subject_id, entity_version=version, data={"n": subject_id}
    )


async def collect(url: str, subject: str, count: int, timeout: float = 10.0) -> list[bytes]:
    """Up to ``count`` messages on ``subject`` (fewer if ``timeout`` passes first), acknowledged."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        stream = "DEADLETTER" if subject.startswith("deadletter") else "MATCHING"
        sub = await js.pull_subscribe(subject, stream=stream)
        received: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(received) < count and asyncio.get_running_loop().time() < deadline:
            try:
                for message in await sub.fetch(count - len(received), timeout=1):
                    received.append(message.data)
                    await message.ack()
            except nats.errors.TimeoutError:
                pass
        return received
    finally:
        await client.close()


async def eventually(check, timeout: float = 20.0, message: str = "condition"):
    """The asyncio ``wait_until``: poll ``check`` (sync or async) until truthy, else fail with ``message``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.05)

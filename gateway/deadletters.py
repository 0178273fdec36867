"""Dead-lettered events for the operator: list them, replay one after fixing the cause. Admin calls are
rare, so each opens a short-lived NATS connection: the gateway holds none otherwise."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from gateway.schemas import DeadLetter, DeadLetterPage, ReplayResult
from gateway.settings import GatewaySettings
from tsunagu.errors import ApiError, not_found
from tsunagu.messaging import list_dead_letters, replay_dead_letter


@asynccontextmanager
async def _jetstream(settings: GatewaySettings) -> AsyncIterator[JetStreamContext]:
    try:
        # One attempt (nats-py otherwise tries the initial connection 60 times, two seconds apart).
        client = await nats.connect(
            settings.nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1
        )
    except Exception as error:
        raise ApiError(
            503, "nats_unavailable", "メッセージ基盤（NATS）に接続できません", "NATS is unreachable"
        ) from error
    try:
        yield client.jetstream(timeout=5)
    finally:
        await client.close()


async def newest(settings: GatewaySettings, limit: int) -> DeadLetterPage:
    async with _jetstream(settings) as js:
        records = await list_dead_letters(js, limit)
    items = [DeadLetter.model_validate(record) for record in records]
    return DeadLetterPage(items=items, total=len(items), limit=limit, offset=0, count=len(items))


async def replay(settings: GatewaySettings, sequence: int) -> ReplayResult:
    async with _jetstream(settings) as js:
        try:
            subject = await replay_dead_letter(js, sequence)
        except (NotFoundError, APIError) as error:  # no such message (or already removed by retention)
            raise not_found("デッドレター", "Dead letter") from error
    return ReplayResult(replayed_to=subject, sequence=sequence)

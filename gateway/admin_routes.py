"""Operator screens of the API: dead-lettered events (see them, replay one after fixing the cause)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from fastapi import APIRouter, Depends, Path, Query, Request
from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from gateway.security import require_admin
from tsunagu.auth import Principal
from tsunagu.errors import ApiError, not_found
from tsunagu.messaging import list_dead_letters, replay_dead_letter

router = APIRouter(prefix="/api/v1/admin/dead-letters", tags=["admin"])


@asynccontextmanager
async def _jetstream(request: Request) -> AsyncIterator[JetStreamContext]:
    # Admin calls are rare: a short-lived connection keeps the gateway free of NATS otherwise.
    try:
        client = await nats.connect(request.app.state.settings.nats_url, connect_timeout=2, allow_reconnect=False)
    except Exception as error:  # noqa: BLE001 - any failure to connect is "unavailable"
        raise ApiError(503, "nats_unavailable", "メッセージ基盤（NATS）に接続できません", "NATS is unreachable") from error
    try:
        yield client.jetstream(timeout=5)
    finally:
        await client.close()


@router.get("")
async def dead_letters(
    request: Request, limit: int = Query(default=50, ge=1, le=500), _admin: Principal = Depends(require_admin)
) -> dict:
    async with _jetstream(request) as js:
        items = await list_dead_letters(js, limit)
    return {"items": items, "count": len(items)}


@router.post("/{sequence}/replay")
async def replay(
    request: Request, sequence: int = Path(ge=1, le=2**63 - 1), _admin: Principal = Depends(require_admin)
) -> dict:
    async with _jetstream(request) as js:
        try:
            subject = await replay_dead_letter(js, sequence)
        except (NotFoundError, APIError) as error:  # no such message (or already removed by retention)
            raise not_found("デッドレター", "Dead letter") from error
    return {"replayed_to": subject, "sequence": sequence}

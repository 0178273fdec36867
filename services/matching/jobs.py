"""Timers of the brokering workflow: proposals nobody answered expire after MATCHING_PROPOSAL_TTL_DAYS.

One function (``expire_due``) runs the rule in its own transaction; three things call it: the CLI
(``tsunagu matching expire-proposals``, the Kubernetes CronJob), and a periodic task in the matching API
process (``MATCHING_EXPIRY_INTERVAL_SECONDS``, 0 = off) so ``make run`` needs no scheduler. Running it twice
at once is safe: each expiry is a compare-and-set, so a proposal expires once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from services.matching import service
from tsunagu.db import session_scope

log = logging.getLogger(__name__)


def expire_due(engine: Engine, now: datetime | None = None) -> int:
    """Expire every proposal due at ``now`` (default: now) in one transaction; returns how many."""
    with session_scope(engine) as session:
        expired = service.expire_proposals(session, now)
    if expired:
        log.info("proposals expired", extra={"expired": expired})
    return expired


async def run_expiry_loop(engine: Engine, interval_seconds: float, events_written: Callable[[], None]) -> None:
    """Expire due proposals every ``interval_seconds`` until cancelled; a failed round is logged and
    retried at the next one."""
    while True:
        try:
            if await asyncio.to_thread(expire_due, engine):
                events_written()
        except Exception:
            log.exception("proposal expiry failed; retrying at the next interval")
        await asyncio.sleep(interval_seconds)

"""Event handlers of the gateway: the notification consumer (durable ``gateway-notifications``).

The gateway owns the user accounts and their e-mail addresses, so it is where events of the brokering
workflow (matching) and the freshness reminders (profiles) become notifications in the app and mails.
JetStream durables belong to one stream, so the one consumer name is bound twice: on MATCHING and on
PROFILES. Each event is applied once (processed_events), in one transaction with what it writes. On MATCHING
it also hears the 相談会 and hub project events (issue 11, ``notifications.SESSION_SUBJECTS``): meetings,
moved meetings, unserved SMEs and confirmed teams are told to the people concerned.

The audit consumer (durable ``gateway-audit``, issue 9) writes an admin's verification or rejection of an
expert profile, which profiles decides, into the gateway's audit log (``gateway.service.audit_event``).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from gateway import notifications, service
from tsunagu.db import session_scope
from tsunagu.events import EventEnvelope
from tsunagu.messaging import ConsumerSpec

log = logging.getLogger(__name__)


class NotificationConsumer:
    def __init__(self, engine: Engine, public_url: str) -> None:
        self.engine = engine
        self.public_url = public_url

    def apply(self, envelope: EventEnvelope) -> int:
        with session_scope(self.engine) as session:
            told = notifications.apply_event(session, envelope, self.public_url)
        if told:
            log.info("notified", extra={"event_id": envelope.id, "subject": envelope.type, "people": told})
        return told

    async def handle(self, envelope: EventEnvelope) -> None:
        await asyncio.to_thread(self.apply, envelope)


class AuditConsumer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(self, envelope: EventEnvelope) -> bool:
        with session_scope(self.engine) as session:
            return service.audit_event(session, envelope)

    async def handle(self, envelope: EventEnvelope) -> None:
        await asyncio.to_thread(self.apply, envelope)


def consumer_specs(engine: Engine, public_url: str) -> list[ConsumerSpec]:
    consumer = NotificationConsumer(engine, public_url)
    return [
        ConsumerSpec(
            durable=service.AUDIT_CONSUMER,
            stream="PROFILES",
            subjects=list(service.AUDITED_EVENTS),
            handler=AuditConsumer(engine).handle,
        ),
        ConsumerSpec(
            durable=notifications.NOTIFICATIONS_CONSUMER,
            stream="MATCHING",
            subjects=notifications.MATCHING_SUBJECTS,
            handler=consumer.handle,
        ),
        ConsumerSpec(
            durable=notifications.NOTIFICATIONS_CONSUMER,
            stream="PROFILES",
            subjects=notifications.PROFILES_SUBJECTS,
            handler=consumer.handle,
        ),
    ]

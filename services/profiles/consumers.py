"""Event handlers of the profiles service: none. Profiles is the source of expert and organisation data
and consumes no events (it only produces them, through its outbox); the list stays empty so the service
has the same shape as the others."""

from __future__ import annotations

from tsunagu.messaging import ConsumerSpec

CONSUMERS: list[ConsumerSpec] = []

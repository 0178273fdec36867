"""JSON logs that carry the request id and the event id across services.

The gateway gives every HTTP request an id (or takes X-Request-ID); services log it, put it into the
events they write (``correlation_id``), and consumers log it again with the event id, so one SME request
can be followed from the browser to the scorer in the logs of four processes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
event_id_var: ContextVar[str | None] = ContextVar("event_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.request_id = request_id_var.get()
        record.event_id = event_id_var.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(request_id)s %(event_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access line and httpx's line per outgoing call repeat what each process's own request log line
    # says (with its request id); formatting them cost the gateway CPU on every proxied call.
    for noisy in ("uvicorn.access", "nats.aio.client", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def event_context(event_id: str | None, correlation_id: str | None = None) -> Iterator[None]:
    event_token = event_id_var.set(event_id)
    request_token = request_id_var.set(correlation_id) if correlation_id else None
    try:
        yield
    finally:
        event_id_var.reset(event_token)
        if request_token is not None:
            request_id_var.reset(request_token)

"""gateway/mailer.py's Prometheus counters: a mail the server accepts counts as sent, a refused one as failed and,
refused for good, as given up (the sending rules themselves are tested in test_notifications.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiosmtpd.controller import Controller
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from gateway import mailer
from gateway.settings import GatewaySettings
from tests.gateway.test_notifications import _Refusing, apply, engine, people, proposal_event  # noqa: F401
from tsunagu.events import Subjects
from tsunagu.natsserver import free_port


def counts() -> tuple[float, float, float]:
    names = ("tsunagu_mails_sent_total", "tsunagu_mails_failed_total", "tsunagu_mails_given_up_total")
    return tuple(REGISTRY.get_sample_value(name) or 0.0 for name in names)  # type: ignore[return-value]


def test_sent_failed_and_given_up_mails_are_counted(
    engine: Engine,  # noqa: F811
    people: dict[str, str],  # noqa: F811
    settings: GatewaySettings,
) -> None:
    apply(engine, proposal_event(Subjects.PROPOSAL_CONFIRMED, people, "sme1"))  # the expert and the broker
    port = free_port()
    controller = Controller(_Refusing("expert@example.jp"), hostname="127.0.0.1", port=port)
    controller.start()
    before = counts()
    try:
        smtp = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_seconds": 5})
        assert mailer.send_due(engine, smtp, datetime.now(UTC)) == (1, 1)
    finally:
        controller.stop()
    after = counts()
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]

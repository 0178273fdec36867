"""The mail sender: a task in the gateway process that drains pending ``MailMessage`` rows over SMTP.

Mails are written by the notification consumer in the same transaction as the notification, so sending
is decoupled from the transition that caused it: an SMTP server that is down or refuses a mail delays that
mail (each failure waits twice as long as the last, up to ``TSUNAGU_MAIL_MAX_BACKOFF_SECONDS``) and never
undoes anything. A mail the server refuses for good (a 5xx for its recipient or content) or that failed
``TSUNAGU_MAIL_MAX_ATTEMPTS`` times is marked failed and not tried again (an error log line says so), so one
bad address cannot keep a sender busy forever; the in-app notification is there either way. ``sent_at`` is set once the server took the mail. Several gateway replicas may run the
sender: a mail is leased by a compare-and-set on ``next_attempt_at`` before it is sent, so one replica
sends it. (A crash between the server's acceptance and the commit of ``sent_at`` sends that mail again
after the lease: at least once, as with any SMTP client.)

``TSUNAGU_SMTP_HOST`` empty disables sending: mails stay pending (a log line says so) and go out once a
host is configured. smtplib is blocking, so each send runs in a worker thread.

Prometheus counters (served by tsunagu/metrics.py's server): ``tsunagu_mails_sent_total``,
``tsunagu_mails_failed_total`` (every failed attempt, retried or not) and ``tsunagu_mails_given_up_total``.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from prometheus_client import Counter
from sqlalchemy.engine import Engine

from gateway import repository
from gateway.models import MailMessage
from gateway.settings import GatewaySettings
from tsunagu.db import session_scope, utcnow

log = logging.getLogger(__name__)
MAILS_SENT = Counter("tsunagu_mails_sent_total", "Mails the SMTP server accepted.")
MAILS_FAILED = Counter("tsunagu_mails_failed_total", "Failed send attempts (each is retried unless given up).")
MAILS_GIVEN_UP = Counter(
    "tsunagu_mails_given_up_total", "Mails marked failed for good (refused, or too many attempts)."
)
LEASE = timedelta(minutes=2)  # longer than one SMTP conversation may take (timeout per step: 10 s)
BATCH = 20


def build_message(mail: MailMessage, settings: GatewaySettings) -> EmailMessage:
    message = EmailMessage()  # UTF-8 throughout; headers encoded as RFC 2047 where they need it
    message["From"] = settings.mail_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Message-ID"] = make_msgid(idstring=mail.id, domain="tsunagu.local")
    message.set_content(mail.body, charset="utf-8")
    return message


def smtp_send(message: EmailMessage, settings: GatewaySettings) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


def refused_for_good(error: Exception) -> bool:
    """A refusal that no retry can change: the server rejects this mail's recipient (every one of them) or its
    content with a 5xx. Not a 5xx about our own account or sender address (a configuration to fix, after which
    the mail should go out), nor any 4xx or network failure (those pass)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def backoff(attempts: int, settings: GatewaySettings) -> timedelta:
    """Wait before attempt ``attempts + 1``: 2, 4, 8 ... seconds, at most the configured maximum."""
    return timedelta(seconds=min(2.0**attempts, settings.mail_max_backoff_seconds))


def send_due(engine: Engine, settings: GatewaySettings, now: datetime | None = None) -> tuple[int, int]:
    """Send the mails due now, each in its own transactions; returns (sent, failed)."""
    now = now or utcnow()
    sent = failed = 0
    with session_scope(engine) as session:
        due = repository.due_mail_ids(session, now, BATCH)
    for mail_id, seen in due:
        with session_scope(engine) as session:
            if not repository.lease_mail(session, mail_id, seen, now + LEASE):
                continue  # another sender took it
        with session_scope(engine) as session:
            mail = repository.mail_by_id(session, mail_id)
            if mail is None or mail.sent_at is not None:
                continue
            try:
                smtp_send(build_message(mail, settings), settings)
            except (OSError, smtplib.SMTPException) as error:
                mail.attempts += 1
                mail.last_error = repr(error)[:500]
                failed += 1
                MAILS_FAILED.inc()
                if refused_for_good(error) or mail.attempts >= settings.mail_max_attempts:
                    mail.failed_at = utcnow()
                    MAILS_GIVEN_UP.inc()
                    log.error(
                        "mail given up",
                        extra={"mail_id": mail.id, "attempts": mail.attempts, "error": mail.last_error},
                    )
                else:
                    mail.next_attempt_at = utcnow() + backoff(mail.attempts, settings)
                    log.warning(
                        "mail not sent; will retry",
                        extra={"mail_id": mail.id, "attempts": mail.attempts, "error": mail.last_error},
                    )
            else:
                mail.sent_at = utcnow()
                mail.attempts += 1
                mail.last_error = None
                sent += 1
                MAILS_SENT.inc()
            session.add(mail)
    if sent:
        log.info("mails sent", extra={"sent": sent})
    return sent, failed


async def run_sender(engine: Engine, settings: GatewaySettings) -> None:
    """Send due mails every ``TSUNAGU_MAIL_POLL_SECONDS`` until cancelled; a failed round is logged and
    the next one tries again."""
    if not settings.smtp_host:
        log.warning("mail disabled (TSUNAGU_SMTP_HOST is empty): mails stay pending until a host is set")
        return
    log.info("mail sender started", extra={"smtp_host": settings.smtp_host, "smtp_port": settings.smtp_port})
    while True:
        try:
            sent, _ = await asyncio.to_thread(send_due, engine, settings)
        except Exception:
            log.exception("mail round failed; retrying")
            sent = 0
        if sent < BATCH:
            await asyncio.sleep(settings.mail_poll_seconds)

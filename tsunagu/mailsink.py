"""A local SMTP sink for ``make run`` and the tests: aiosmtpd as a child process, storing every mail it
receives in a Maildir, so a developer (or a test) reads what Tsunagu sent without a real mail server.

Production names a real SMTP server in the gateway's settings instead (``TSUNAGU_SMTP_HOST`` ...).
"""

from __future__ import annotations

import mailbox
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from tsunagu.natsserver import wait_for_port


class MailSink:
    def __init__(self, maildir: Path, port: int = 1025) -> None:
        self.maildir = maildir
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        for sub in ("cur", "new", "tmp"):  # the Maildir layout, before the first mail arrives
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        log = open(self.maildir.parent / "mail-sink.log", "ab")  # noqa: SIM115 - kept open for the child's life
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",  # do not setuid to nobody
                "-u",  # SMTPUTF8: Japanese addresses and headers pass unchanged
                "-l",
                f"127.0.0.1:{self.port}",
                "-c",
                "aiosmtpd.handlers.Mailbox",
                str(self.maildir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def read_mails(maildir: Path) -> list[EmailMessage]:
    """Every mail in the sink, parsed (headers decoded, bodies as text)."""
    if not maildir.exists():
        return []
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(message.as_bytes()) for message in mailbox.Maildir(maildir, create=False)]  # type: ignore[misc]

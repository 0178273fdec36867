"""The local SMTP sink (aiosmtpd in a child process): what the gateway sends arrives in a Maildir."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from tsunagu.mailsink import MailSink, read_mails
from tsunagu.natsserver import free_port


def test_a_japanese_mail_sent_over_smtp_is_stored_and_read_back(tmp_path: Path) -> None:
    sink = MailSink(tmp_path / "mail", free_port())
    sink.start()
    try:
        message = EmailMessage()
        message["From"] = "noreply@tsunagu.example"
        message["To"] = "山田 太郎 <yamada@example.jp>"
        message["Subject"] = "専門家の提案が届きました / An expert was proposed"
        message.set_content("ランサムウェア対策の相談に専門家が提案されました。\nAn expert was proposed.")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            client.send_message(message)
        mails = read_mails(tmp_path / "mail")
    finally:
        sink.stop()
    assert len(mails) == 1
    assert mails[0]["Subject"] == "専門家の提案が届きました / An expert was proposed"
    assert mails[0]["To"].addresses[0].addr_spec == "yamada@example.jp"
    assert "ランサムウェア対策" in mails[0].get_content()


def test_an_empty_or_missing_sink_reads_as_no_mail(tmp_path: Path) -> None:
    assert read_mails(tmp_path / "nowhere") == []

"""The gateway's notifications (issue 8) against a real SQLite database and a real SMTP sink: who each
event of the brokering workflow tells and with which words, once per event id; the mail sender's retries;
and that everyone reads and marks only their own notifications."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway import mailer, notifications
from gateway.models import MailMessage, Notification, User
from gateway.service import ensure_user
from gateway.settings import GatewaySettings
from tests.conftest import PASSWORD
from tsunagu.contracts import (
    EngagementChangedV1,
    ExpertStatusChangedV1,
    HubProjectChangedV1,
    ProposalChangedV1,
    RequestChangedV1,
    SessionChangedV1,
    SessionMeetingV1,
    SessionUnservedV1,
)
from tsunagu.db import make_engine, session_scope
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.mailsink import MailSink, read_mails
from tsunagu.natsserver import free_port

PEOPLE = {
    "expert": ("expert", []),
    "sme1": ("sme", []),
    "sme2": ("sme", []),
    "broker": ("broker", ["47"]),  # proposed the expert
    "broker2": ("broker", ["47", "13"]),  # also covers Okinawa
    "tokyo": ("broker", ["13"]),
}


@pytest.fixture
def engine(settings: GatewaySettings) -> Iterator[Engine]:
    database = make_engine(settings.database_url_for("gateway"))
    yield database
    database.dispose()


@pytest.fixture
def people(engine: Engine) -> dict[str, str]:
    """Accounts of every role concerned; name -> user id."""
    ids = {}
    with session_scope(engine) as session:
        for name, (role, prefectures) in PEOPLE.items():
            user = ensure_user(
                session,
                email=f"{name}@example.jp",
                password=PASSWORD,
                display_name=f"{name} さん",
                role=role,
                prefectures=prefectures,
            )
            ids[name] = user.id
    return ids


def envelope(subject: str, data: Any) -> EventEnvelope:
    return EventEnvelope(
        type=subject, source="matching", subject_id="x", entity_version=1, data=data.model_dump(mode="json")
    )


def proposal_event(subject: str, people: dict[str, str], actor: str, **overrides: Any) -> EventEnvelope:
    data = {
        "proposal_id": "p1",
        "request_id": "r1",
        "request_title": "ランサムウェア対策",
        "prefecture": "47",
        "organization_id": "o1",
        "sme_user_ids": [people["sme1"], people["sme2"]],
        "actor_id": people.get(actor, actor),
        "expert_id": "e1",
        "expert_name": "沖縄 太郎",
        "expert_user_id": people["expert"],
        "broker_id": people["broker"],
        "state": subject.rsplit(".", 1)[-1],
        "expires_at": datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        **overrides,
    }
    return envelope(subject, ProposalChangedV1(**data))


def engagement_event(subject: str, people: dict[str, str], actor: str, **overrides: Any) -> EventEnvelope:
    data = {
        "engagement_id": "g1",
        "proposal_id": "p1",
        "request_id": "r1",
        "request_title": "ランサムウェア対策",
        "prefecture": "47",
        "sme_user_ids": [people["sme1"], people["sme2"]],
        "actor_id": people.get(actor, actor),
        "expert_id": "e1",
        "expert_name": "沖縄 太郎",
        "expert_user_id": people["expert"],
        "broker_id": people["broker"],
        "state": "active",
        **overrides,
    }
    return envelope(subject, EngagementChangedV1(**data))


def request_event(subject: str, people: dict[str, str], actor: str) -> EventEnvelope:
    data = RequestChangedV1(
        request_id="r1",
        request_title="ランサムウェア対策",
        prefecture="47",
        sme_user_ids=[people["sme1"], people["sme2"]],
        actor_id=people.get(actor, actor),
        status=subject.rsplit(".", 1)[-1],
        reason="社内で対応できました" if subject == Subjects.REQUEST_CANCELLED else None,
    )
    return envelope(subject, data)


def told(engine: Engine, event: EventEnvelope) -> dict[str, Notification]:
    with Session(engine) as session:
        rows = session.exec(select(Notification).where(Notification.event_id == event.id)).all()
        users = {user.id: user.email.split("@")[0] for user in session.exec(select(User))}
    return {users[row.user_id]: row for row in rows}


def apply(engine: Engine, event: EventEnvelope) -> int:
    with session_scope(engine) as session:
        return notifications.apply_event(session, event, "https://tsunagu.example.jp")


@pytest.mark.parametrize(
    ("build", "actor", "expected", "title"),
    [
        ("proposal:proposed", "broker", {"expert", "sme1", "sme2"}, ("expert", "相談の提案が届きました")),
        ("proposal:accepted", "expert", {"sme1", "sme2", "broker"}, ("sme1", "専門家が承諾しました：確定してください")),
        ("proposal:declined", "expert", {"broker", "sme1", "sme2"}, ("broker", "提案が辞退されました")),
        ("proposal:withdrawn", "broker", {"expert", "sme1", "sme2"}, ("expert", "提案が取り下げられました")),
        ("proposal:expired", "system", {"broker", "expert", "sme1", "sme2"}, ("broker", "提案が期限切れになりました")),
        ("proposal:confirmed", "sme1", {"expert", "broker"}, ("expert", "依頼が確定しました")),
        ("proposal:closed", "sme1", {"expert"}, ("expert", "提案は終了しました")),
        ("engagement:created", "sme1", {"broker2"}, ("broker2", "相談が成立しました")),
        (
            "engagement:completed",
            "sme1",
            {"sme2", "expert", "broker"},
            ("sme2", "相談が完了しました：評価をお願いします"),
        ),
        ("engagement:cancelled", "expert", {"sme1", "sme2", "broker"}, ("sme1", "依頼が取り消されました")),
        ("request:cancelled", "sme1", {"sme2", "broker", "broker2"}, ("broker2", "相談が取り消されました")),
        ("request:completed", "sme1", {"broker", "broker2"}, ("broker", "相談が完了しました")),
    ],
)
def test_who_each_event_tells(
    engine: Engine, people: dict[str, str], build: str, actor: str, expected: set[str], title: tuple[str, str]
) -> None:
    family, event_name = build.split(":")
    subject = f"matching.{family}.{event_name}"
    builder = {"proposal": proposal_event, "engagement": engagement_event, "request": request_event}[family]
    event = builder(subject, people, actor)

    assert apply(engine, event) == len(expected)
    got = told(engine, event)
    assert set(got) == expected  # never the actor, never the Tokyo broker, never twice
    for notification in got.values():
        assert notification.kind == subject
        assert notification.title_ja and notification.title_en and notification.body_en
        assert "ランサムウェア対策" in notification.body_ja
    who, title_ja = title
    assert got[who].title_ja == title_ja


def test_words_and_links_say_what_to_do_next(engine: Engine, people: dict[str, str]) -> None:
    proposed = proposal_event(Subjects.PROPOSAL_PROPOSED, people, "broker")
    apply(engine, proposed)
    to_expert = told(engine, proposed)["expert"]
    assert to_expert.link == "/me/proposals" and to_expert.title_en == "You have been proposed for a consultation"
    assert "2026-12-01 12:00 までに承諾または辞退" in to_expert.body_ja  # the deadline in Japan time
    assert told(engine, proposed)["sme1"].link == "/requests/r1"

    declined = proposal_event(Subjects.PROPOSAL_DECLINED, people, "expert", reason="日程が合いません")
    apply(engine, declined)
    assert "理由: 日程が合いません" in told(engine, declined)["broker"].body_ja
    assert "Reason: 日程が合いません" in told(engine, declined)["broker"].body_en

    completed = engagement_event(Subjects.ENGAGEMENT_COMPLETED, people, "broker", state="completed")
    apply(engine, completed)
    asked = told(engine, completed)
    assert "評価" in asked["expert"].title_ja and "評価" in asked["sme1"].title_ja
    assert asked["expert"].link == "/engagements/g1" and "評価" not in asked.get("broker", asked["sme1"]).link

    rated = engagement_event(Subjects.ENGAGEMENT_RATED, people, "sme1", state="completed", stars=5, side="sme")
    apply(engine, rated)
    assert set(told(engine, rated)) == {"expert"} and "（5）" in told(engine, rated)["expert"].body_ja
    rated_back = engagement_event(
        Subjects.ENGAGEMENT_RATED, people, "expert", state="completed", stars=4, side="expert"
    )
    apply(engine, rated_back)
    assert set(told(engine, rated_back)) == {"sme1", "sme2"}


def test_each_event_tells_once_and_writes_one_mail_per_person(engine: Engine, people: dict[str, str]) -> None:
    event = proposal_event(Subjects.PROPOSAL_ACCEPTED, people, "expert")
    assert apply(engine, event) == 3
    assert apply(engine, event) == 0  # redelivered: nobody is told twice
    with Session(engine) as session:
        mails = session.exec(select(MailMessage)).all()
    assert sorted(mail.to_address for mail in mails) == ["broker@example.jp", "sme1@example.jp", "sme2@example.jp"]
    mail = next(mail for mail in mails if mail.to_address == "sme1@example.jp")
    assert mail.subject == "【つなぐ】専門家が承諾しました：確定してください / The expert accepted: please confirm"
    assert mail.body.startswith("sme1 さん 様")
    assert "https://tsunagu.example.jp/requests/r1" in mail.body and "Dear sme1 さん" in mail.body
    assert mail.sent_at is None and mail.attempts == 0


def test_reminders_reach_the_expert_through_the_owner(engine: Engine, people: dict[str, str]) -> None:
    due = ExpertStatusChangedV1(
        expert_id="e1",
        reason_code="confirmation_due",
        reason_ja="最終確認から11か月が経ちました",
        reason_en="11 months since the last confirmation",
        owner_user_id=people["expert"],
        expert_name="沖縄 太郎",
    )
    event = EventEnvelope(
        type=Subjects.EXPERT_CONFIRMATION_DUE,
        source="profiles",
        subject_id="e1",
        entity_version=3,
        data=due.model_dump(mode="json"),
    )
    assert apply(engine, event) == 1
    reminder = told(engine, event)["expert"]
    assert reminder.title_ja == "登録内容の確認をお願いします" and "11か月" in reminder.body_ja
    assert reminder.link == "/experts/e1"
    # An event from before owner_user_id travelled reaches nobody (and is still consumed).
    anonymous = EventEnvelope(
        type=Subjects.EXPERT_CONFIRMATION_DUE,
        source="profiles",
        subject_id="e1",
        entity_version=4,
        data=due.model_copy(update={"owner_user_id": None}).model_dump(mode="json"),
    )
    assert apply(engine, anonymous) == 0


def test_ids_without_an_account_are_skipped(engine: Engine, people: dict[str, str]) -> None:
    event = proposal_event(Subjects.PROPOSAL_PROPOSED, people, "broker", sme_user_ids=["gone-user"])
    assert apply(engine, event) == 1 and set(told(engine, event)) == {"expert"}


def _pending(engine: Engine) -> list[MailMessage]:
    with Session(engine) as session:
        return list(session.exec(select(MailMessage).order_by(MailMessage.to_address)))


def test_the_sender_retries_after_a_failure_and_sends_once_the_server_is_up(
    engine: Engine, people: dict[str, str], settings: GatewaySettings, tmp_path: Path
) -> None:
    apply(engine, proposal_event(Subjects.PROPOSAL_CONFIRMED, people, "sme1"))  # the expert and the broker
    port = free_port()
    smtp = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_seconds": 2})
    now = datetime.now(UTC)

    assert mailer.send_due(engine, smtp, now) == (0, 2)  # nothing listens yet
    failed = _pending(engine)
    assert all(mail.attempts == 1 and mail.sent_at is None and mail.last_error for mail in failed)
    assert all(mail.next_attempt_at.replace(tzinfo=UTC) > now for mail in failed)
    assert mailer.send_due(engine, smtp, now) == (0, 0)  # not due again before the back-off

    sink = MailSink(tmp_path / "mail", port)
    sink.start()
    try:
        later = now + timedelta(seconds=30)
        assert mailer.send_due(engine, smtp, later) == (2, 0)
        assert mailer.send_due(engine, smtp, later + timedelta(hours=1)) == (0, 0)  # sent once
    finally:
        sink.stop()
    sent = _pending(engine)
    assert all(mail.sent_at is not None and mail.attempts == 2 and mail.last_error is None for mail in sent)
    mails = read_mails(tmp_path / "mail")
    assert sorted(str(mail["To"]) for mail in mails) == ["broker@example.jp", "expert@example.jp"]
    assert all(str(mail["Subject"]).startswith("【つなぐ】依頼が確定しました / ") for mail in mails)
    assert (
        "中小企業の担当者と日程を調整してください"
        in next(mail for mail in mails if mail["To"] == "expert@example.jp").get_content()
    )


def test_the_back_off_doubles_up_to_the_maximum(settings: GatewaySettings) -> None:
    assert [mailer.backoff(n, settings).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]
    assert mailer.backoff(30, settings).total_seconds() == settings.mail_max_backoff_seconds


def test_a_mail_leased_by_another_sender_is_not_sent_twice(engine: Engine, people: dict[str, str]) -> None:
    from gateway import repository

    apply(engine, proposal_event(Subjects.PROPOSAL_CLOSED, people, "sme1"))
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        [(mail_id, seen)] = repository.due_mail_ids(session, now, 10)
    with session_scope(engine) as session:
        assert repository.lease_mail(session, mail_id, seen, now + mailer.LEASE)
    with session_scope(engine) as session:
        assert not repository.lease_mail(session, mail_id, seen, now + mailer.LEASE)  # the second one loses
        assert repository.due_mail_ids(session, now, 10) == []


def test_everyone_reads_and_marks_only_their_own(
    client: TestClient, engine: Engine, people: dict[str, str], account: Callable[..., dict]
) -> None:
    expert = account("expert", "expert@example.jp")
    sme = account("sme", "sme1@example.jp")
    for subject in (Subjects.PROPOSAL_PROPOSED, Subjects.PROPOSAL_CONFIRMED, Subjects.PROPOSAL_CLOSED):
        apply(engine, proposal_event(subject, people, "broker2"))

    page = client.get("/api/v1/notifications", headers=expert)
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == 3 and body["unread"] == 3
    kinds = [item["kind"] for item in body["items"]]
    assert kinds == [Subjects.PROPOSAL_CLOSED, Subjects.PROPOSAL_CONFIRMED, Subjects.PROPOSAL_PROPOSED]  # newest first
    newest = body["items"][0]

    # Someone else's notification does not exist for them: 404, nothing of it shown.
    denied = client.post(f"/api/v1/notifications/{newest['id']}/read", headers=sme)
    assert denied.status_code == 404 and "ランサムウェア" not in denied.text
    assert denied.json()["error"]["message_ja"] == "お知らせが見つかりません"
    assert client.post("/api/v1/notifications/unknown/read", headers=expert).status_code == 404
    assert client.get("/api/v1/notifications").status_code == 401
    assert [item["kind"] for item in client.get("/api/v1/notifications", headers=sme).json()["items"]] == [
        Subjects.PROPOSAL_PROPOSED
    ]

    read = client.post(f"/api/v1/notifications/{newest['id']}/read", headers=expert)
    assert read.status_code == 200 and read.json()["read_at"]
    again = client.post(f"/api/v1/notifications/{newest['id']}/read", headers=expert)
    assert again.json()["read_at"] == read.json()["read_at"]  # marking twice changes nothing
    after = client.get("/api/v1/notifications", headers=expert).json()
    assert after["unread"] == 2 and after["items"][-1]["id"] == newest["id"]  # unread first

    marked = client.post("/api/v1/notifications/read-all", headers=expert)
    assert marked.json() == {"marked_read": 2}
    assert client.get("/api/v1/notifications", headers=expert).json()["unread"] == 0
    assert client.get("/api/v1/notifications", headers=sme).json()["unread"] == 1  # the SME's stay unread

    bad = client.get("/api/v1/notifications", headers=expert, params={"limit": 0})
    assert bad.status_code == 422 and "limit" in bad.text


class _Refusing:
    """An SMTP server (aiosmtpd) that refuses one address for good (550) and takes the others."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.received: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.extend(envelope.rcpt_tos)
        return "250 Message accepted"


def test_a_mail_refused_for_good_is_given_up_and_a_failing_one_after_the_attempts(
    engine: Engine, people: dict[str, str], settings: GatewaySettings
) -> None:
    from aiosmtpd.controller import Controller

    apply(engine, proposal_event(Subjects.PROPOSAL_CONFIRMED, people, "sme1"))  # the expert and the broker
    handler = _Refusing("expert@example.jp")
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_timeout_seconds": 5})
        now = datetime.now(UTC)
        assert mailer.send_due(engine, smtp, now) == (1, 1)
        assert mailer.send_due(engine, smtp, now + timedelta(days=1)) == (0, 0)  # never tried again
    finally:
        controller.stop()
    mails = {mail.to_address: mail for mail in _pending(engine)}
    refused = mails["expert@example.jp"]
    assert refused.failed_at is not None and refused.sent_at is None and "550" in (refused.last_error or "")
    assert mails["broker@example.jp"].sent_at is not None and handler.received == ["broker@example.jp"]

    # A server that is down only delays a mail, until the attempts are used up: then it is given up too.
    apply(engine, proposal_event(Subjects.PROPOSAL_CLOSED, people, "sme1"))
    down = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": free_port(), "smtp_timeout_seconds": 1, "mail_max_attempts": 2}
    )
    later = now + timedelta(days=2)
    assert mailer.send_due(engine, down, later)[1] >= 1
    assert mailer.send_due(engine, down, later + timedelta(hours=1))[1] >= 1
    assert mailer.send_due(engine, down, later + timedelta(days=1)) == (0, 0)
    closed = [mail for mail in _pending(engine) if mail.sent_at is None and mail.failed_at is None]
    assert closed == []  # nothing pending forever


# --- 相談会 and hub projects (issue 11) ----------------------------------------------------------------


def session_event(subject: str, people: dict[str, str], **overrides: Any) -> EventEnvelope:
    """A 相談会 in Naha: the expert meets sme1 at 10:00 and sme2 at 11:00."""
    meetings = [
        SessionMeetingV1(
            slot=slot,
            start=start,
            end=end,
            expert_id="e1",
            expert_name="沖縄 太郎",
            expert_user_id=people["expert"],
            registration_id=f"reg-{sme}",
            sme_user_id=people[sme],
            organization_name=f"株式会社{sme}",
        )
        for slot, start, end, sme in ((0, "10:00", "10:45", "sme1"), (1, "11:00", "11:45", "sme2"))
    ]
    data = {
        "session_id": "s1",
        "title": "沖縄 セキュリティ相談会",
        "date": "2027-01-20",
        "venue_prefecture": "47",
        "venue": "那覇商工会議所",
        "broker_id": people["broker"],
        "state": "published",
        "meetings": meetings,
        "affected_user_ids": [people["expert"], people["sme1"], people["sme2"], people["tokyo"]],
        "unserved_sme_user_ids": [],
        "occurred_at": datetime(2026, 12, 1, tzinfo=UTC),
        **overrides,
    }
    return envelope(subject, SessionChangedV1(**data))


def test_a_published_day_tells_each_expert_and_sme_their_meetings_and_the_unserved_why(
    engine: Engine, people: dict[str, str]
) -> None:
    # "tokyo" stands for an SME left without a meeting (any account will do).
    unserved = SessionUnservedV1(
        registration_id="reg-x",
        sme_user_id=people["tokyo"],
        reason_ja="ビジネスメール詐欺対策の相談に対応できる招待専門家がいません",
        reason_en="No invited expert covers business e-mail compromise",
    )
    event = session_event(
        Subjects.SESSION_PUBLISHED, people, unserved=[unserved], unserved_sme_user_ids=[people["tokyo"]]
    )
    assert apply(engine, event) == 4
    got = told(engine, event)
    assert set(got) == {"expert", "sme1", "sme2", "tokyo"}  # not the broker who published it
    expert = got["expert"]
    assert expert.title_ja == "相談会の面談が決まりました" and expert.title_en == "Your consultation day meetings"
    assert "那覇商工会議所（沖縄県）" in expert.body_ja and "那覇商工会議所 (沖縄県)" in expert.body_en
    assert "2027-01-20 10:00〜10:45　株式会社sme1 様" in expert.body_ja
    assert "2027-01-20 11:00〜11:45　株式会社sme2 様" in expert.body_ja
    assert "2027-01-20 10:00-10:45 with 株式会社sme1" in expert.body_en
    sme1 = got["sme1"]
    assert "10:00〜10:45　沖縄 太郎 さん" in sme1.body_ja and "11:00" not in sme1.body_ja  # only their own
    assert sme1.link == "/api/v1/sessions/s1/schedule.ics"
    left_out = got["tokyo"]
    assert left_out.title_ja == "相談会の面談を設定できませんでした"
    assert "理由: ビジネスメール詐欺対策の相談に対応できる招待専門家がいません" in left_out.body_ja
    assert "Reason: No invited expert covers business e-mail compromise" in left_out.body_en
    with Session(engine) as session:
        mails = {m.to_address: m for m in session.exec(select(MailMessage))}
    assert set(mails) == {"expert@example.jp", "sme1@example.jp", "sme2@example.jp", "tokyo@example.jp"}
    assert mails["sme1@example.jp"].subject == "【つなぐ】相談会の面談が決まりました / Your consultation day meetings"
    assert "https://tsunagu.example.jp/api/v1/sessions/s1/schedule.ics" in mails["sme1@example.jp"].body
    assert apply(engine, event) == 0  # redelivered: nobody twice


def test_a_day_solved_again_tells_only_those_whose_meetings_moved_or_went(
    engine: Engine, people: dict[str, str]
) -> None:
    moved = session_event(Subjects.SESSION_PUBLISHED, people).data["meetings"][:1]
    moved[0] |= {"slot": 2, "start": "13:00", "end": "13:45"}
    # sme1's meeting moved to 13:00; sme2's meeting is gone (sme2 now unserved); broker2 stands for an expert
    # whose only meeting is gone. The expert's other meetings did not change, but its 10:00 moved: it is told.
    event = session_event(
        Subjects.SESSION_CHANGED,
        people,
        meetings=[SessionMeetingV1(**moved[0])],
        affected_user_ids=[people["expert"], people["sme1"], people["sme2"], people["broker2"]],
        unserved=[
            SessionUnservedV1(
                registration_id="reg-sme2", sme_user_id=people["sme2"], reason_ja="枠が不足", reason_en="no places"
            )
        ],
        unserved_sme_user_ids=[people["sme2"]],
    )
    apply(engine, event)
    got = told(engine, event)
    assert set(got) == {"expert", "sme1", "sme2", "broker2"}
    assert got["sme1"].title_ja == "相談会の面談時間が変更されました"
    assert "13:00〜13:45" in got["sme1"].body_ja and "have changed" in got["sme1"].body_en
    assert "理由: 枠が不足" in got["sme2"].body_ja
    assert got["broker2"].title_ja == "相談会の面談がなくなりました"
    # Solved again with nothing changed for sme2: not told again.
    same = session_event(Subjects.SESSION_CHANGED, people, meetings=[], affected_user_ids=[people["sme1"]])
    apply(engine, same)
    assert set(told(engine, same)) == {"sme1"}


def test_a_registration_tells_the_broker_of_the_day(engine: Engine, people: dict[str, str]) -> None:
    event = session_event(
        Subjects.SESSION_REGISTERED, people, state="open", meetings=[], affected_user_ids=[people["sme1"]]
    )
    apply(engine, event)
    got = told(engine, event)
    assert set(got) == {"broker"} and got["broker"].title_ja == "相談会に申込がありました"
    assert "那覇商工会議所（沖縄県）" in got["broker"].body_ja
    created = session_event(Subjects.SESSION_CREATED, people, state="open", meetings=[], affected_user_ids=[])
    assert apply(engine, created) == 0  # nobody invited with an account: nobody to tell


def test_the_invited_experts_hear_of_a_new_day_and_of_its_cancellation(engine: Engine, people: dict[str, str]) -> None:
    created = session_event(
        Subjects.SESSION_CREATED,
        people,
        state="open",
        meetings=[],
        affected_user_ids=[],
        invited_expert_user_ids=[people["expert"]],
    )
    apply(engine, created)
    got = told(engine, created)
    assert set(got) == {"expert"} and got["expert"].title_ja == "相談会に招待されました"
    assert "2027-01-20" in got["expert"].body_ja and "那覇商工会議所（沖縄県）" in got["expert"].body_ja
    assert got["expert"].link == "/api/v1/sessions/s1"
    cancelled = session_event(
        Subjects.SESSION_CANCELLED,
        people,
        state="cancelled",
        meetings=[],
        affected_user_ids=[],
        invited_expert_user_ids=[people["expert"]],
    )
    apply(engine, cancelled)
    assert told(engine, cancelled)["expert"].title_ja == "相談会は中止されました"


def project_event(subject: str, people: dict[str, str], **overrides: Any) -> EventEnvelope:
    data = {
        "project_id": "hp1",
        "title": "需要予測で在庫を減らす",
        "summary": "食品メーカーの需要予測",
        "prefecture": "47",
        "remote_ok": True,
        "state": subject.rsplit(".", 1)[-1],
        "start_on": "2027-02-01",
        "weeks": 8,
        "member_user_ids": [people["expert"], people["sme2"]],  # a learner and a mentor (any accounts)
        "actor_id": people["broker"],  # stands for the hub staff who confirmed it
        "occurred_at": datetime(2026, 12, 1, tzinfo=UTC),
        **overrides,
    }
    return envelope(subject, HubProjectChangedV1(**data))


def test_a_confirmed_team_tells_its_learners_and_mentor_a_proposed_one_nobody(
    engine: Engine, people: dict[str, str]
) -> None:
    confirmed = project_event(Subjects.PROJECT_TEAM_CONFIRMED, people)
    assert apply(engine, confirmed) == 2
    got = told(engine, confirmed)
    assert set(got) == {"expert", "sme2"}
    words = got["expert"]
    assert words.title_ja == "地域企業協働プログラムのチームが確定しました"
    assert "「需要予測で在庫を減らす」" in words.body_ja and "2027-02-01 から8週間" in words.body_ja
    assert "沖縄県（リモート参加可）" in words.body_ja and "for 8 weeks" in words.body_en
    assert words.link == "/api/v1/projects/hp1"
    for subject in (Subjects.PROJECT_CREATED, Subjects.PROJECT_UPDATED, Subjects.PROJECT_TEAM_PROPOSED):
        assert apply(engine, project_event(subject, people)) == 0


def test_the_notification_consumer_listens_to_sessions_and_projects(engine: Engine) -> None:
    from gateway.consumers import consumer_specs

    [matching] = [
        spec
        for spec in consumer_specs(engine, "https://tsunagu.example.jp")
        if spec.durable == notifications.NOTIFICATIONS_CONSUMER and spec.stream == "MATCHING"
    ]
    assert "matching.session.>" in matching.subjects and "matching.project.>" in matching.subjects
    assert notifications.messages_for(
        session_event(
            Subjects.SESSION_PUBLISHED, {"expert": "e", "sme1": "a", "sme2": "b", "broker": "x", "tokyo": "t"}
        )
    )[0]

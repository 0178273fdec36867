"""Notifications: who an event concerns and what they are told, in the app and by mail.

The events of the brokering workflow carry the ids of the people concerned (the proposed expert, the SME's
users, the proposing broker) and the request's prefecture; the gateway owns the accounts, so it alone can
turn those ids (and "the brokers covering Okinawa") into people with names and e-mail addresses. Each
person gets one ``Notification`` and, if they have an address, one ``MailMessage``, written in the
consumer's transaction with the event's id claimed: a redelivered event tells nobody twice, and a mail
server that is down delays the mail (``gateway.mailer``) without touching the transition that caused it.

The words: Japanese first, English beside; a short title, a body that says what happened and what to do
next, and the page to open. Whoever caused the change is not told about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from gateway import repository
from gateway.models import MailMessage, Notification, User
from gateway.schemas import NotificationPage, NotificationRead
from tsunagu.auth import Role
from tsunagu.contracts import (
    CorrectionDecidedV1,
    EngagementChangedV1,
    ExpertStatusChangedV1,
    ExpertVerificationV1,
    HubProjectChangedV1,
    OrganizationInvitationV1,
    ProposalChangedV1,
    RequestChangedV1,
    SessionChangedV1,
    SessionMeetingV1,
    parse_event_data,
)
from tsunagu.errors import not_found
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.reference import prefectures

NOTIFICATIONS_CONSUMER = "gateway-notifications"
JST = ZoneInfo("Asia/Tokyo")

MATCHING_SUBJECTS = [
    f"{Subjects.PROPOSAL_PREFIX}.>",
    f"{Subjects.ENGAGEMENT_PREFIX}.>",
    Subjects.REQUEST_CANCELLED,
    Subjects.REQUEST_COMPLETED,
]
PROFILES_SUBJECTS = [
    Subjects.EXPERT_CONFIRMATION_DUE,
    Subjects.EXPERT_DEACTIVATED,
    Subjects.EXPERT_REACTIVATED,
]
# Trust (issue 9): an admin's decision on a claimed profile or a correction; an invitation to an organisation.
TRUST_SUBJECTS = [
    Subjects.EXPERT_VERIFIED,
    Subjects.EXPERT_REJECTED,
    Subjects.EXPERT_CORRECTION_DECIDED,
    Subjects.ORGANIZATION_INVITED,
]
PROFILES_SUBJECTS += TRUST_SUBJECTS
# 相談会 and hub projects (issue 11): an expert and an SME hear of their meetings, people whose meetings moved
# of the change, unserved SMEs why, the broker of each registration, learners and mentors of their team.
SESSION_SUBJECTS = [f"{Subjects.SESSION_PREFIX}.>", f"{Subjects.PROJECT_PREFIX}.>"]
MATCHING_SUBJECTS += SESSION_SUBJECTS


@dataclass
class Message:
    """What one group of people is told about one event."""

    user_ids: list[str]
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str
    link: str
    brokers_of: str | None = None  # also every broker covering this prefecture
    extra: dict[str, str] = field(default_factory=dict)


def _date(value: datetime | None) -> str:
    return _aware(value).astimezone(JST).strftime("%Y-%m-%d %H:%M") if value else "-"


def _why(reason: str | None) -> tuple[str, str]:
    return (f"\n理由: {reason}", f"\nReason: {reason}") if reason else ("", "")


def _proposal_messages(subject: str, p: ProposalChangedV1) -> list[Message]:
    title = f"「{p.request_title}」"
    request_link, mine = f"/requests/{p.request_id}", "/me/proposals"
    expert = [p.expert_user_id] if p.expert_user_id else []
    why_ja, why_en = _why(p.reason)
    event = subject.rsplit(".", 1)[-1]
    if event == "proposed":
        return [
            Message(
                expert,
                "相談の提案が届きました",
                "You have been proposed for a consultation",
                f"支援機関の担当者があなたを相談{title}の専門家として提案しました。"
                f"{_date(p.expires_at)} までに承諾または辞退してください。",
                f"A broker proposed you as the expert for the consultation {title}. "
                f"Please accept or decline by {_date(p.expires_at)} (JST).",
                mine,
            ),
            Message(
                p.sme_user_ids,
                "専門家が提案されました",
                "An expert has been proposed",
                f"相談{title}に {p.expert_name} さんが提案されました。専門家の承諾をお待ちください。",
                f"{p.expert_name} has been proposed for your consultation {title}. Wait for the expert to accept.",
                request_link,
            ),
        ]
    if event == "accepted":
        return [
            Message(
                p.sme_user_ids,
                "専門家が承諾しました：確定してください",
                "The expert accepted: please confirm",
                f"{p.expert_name} さんが相談{title}を承諾しました。内容を確認し、依頼を確定してください。",
                f"{p.expert_name} accepted your consultation {title}. Review it and confirm the engagement.",
                request_link,
            ),
            Message(
                [p.broker_id],
                "提案が承諾されました",
                "Your proposal was accepted",
                f"{p.expert_name} さんが相談{title}への提案を承諾しました。中小企業の確定を待っています。",
                f"{p.expert_name} accepted the proposal for {title}. The SME is yet to confirm.",
                request_link,
            ),
        ]
    if event in ("declined", "withdrawn", "expired"):
        words = {
            "declined": (
                "辞退されました",
                "was declined",
                f"{p.expert_name} さんが相談{title}への提案を辞退しました。",
            ),
            "withdrawn": ("取り下げられました", "was withdrawn", f"相談{title}への提案が取り下げられました。"),
            "expired": ("期限切れになりました", "expired", f"相談{title}への提案は回答期限を過ぎました。"),
        }[event]
        ja_state, en_state, ja_body = words
        en_body = {
            "declined": f"{p.expert_name} declined the proposal for {title}.",
            "withdrawn": f"The proposal for {title} was withdrawn.",
            "expired": f"The proposal for {title} expired unanswered.",
        }[event]
        return [
            Message(
                [p.broker_id],
                f"提案が{ja_state}",
                f"A proposal {en_state}",
                f"{ja_body}{why_ja}\n別の専門家の提案を検討してください。",
                f"{en_body}{why_en}\nConsider proposing another expert.",
                request_link,
            ),
            Message(
                [] if event == "declined" else expert,
                f"提案が{ja_state}",
                f"A proposal {en_state}",
                f"{ja_body}{why_ja}",
                f"{en_body}{why_en}",
                mine,
            ),
            Message(
                p.sme_user_ids,
                f"提案が{ja_state}",
                f"A proposal {en_state}",
                f"{ja_body}{why_ja}\n支援機関が別の専門家を探します。",
                f"{en_body}{why_en}\nThe broker will look for another expert.",
                request_link,
            ),
        ]
    if event == "confirmed":
        return [
            Message(
                expert,
                "依頼が確定しました",
                "The engagement is confirmed",
                f"相談{title}の依頼が確定しました。中小企業の担当者と日程を調整してください。",
                f"The consultation {title} is confirmed. Arrange a date with the SME.",
                mine,
            ),
            Message(
                [p.broker_id],
                "依頼が確定しました",
                "An engagement was confirmed",
                f"相談{title}で {p.expert_name} さんへの依頼が確定しました。",
                f"The consultation {title} with {p.expert_name} is confirmed.",
                request_link,
            ),
        ]
    if event == "closed":
        return [
            Message(
                expert,
                "提案は終了しました",
                "The proposal was closed",
                f"相談{title}への提案は終了しました。{why_ja.strip()}\nご対応ありがとうございました。",
                f"The proposal for {title} was closed. {why_en.strip()}\nThank you for your time.",
                mine,
            )
        ]
    return []


def _engagement_messages(subject: str, e: EngagementChangedV1) -> list[Message]:
    title = f"「{e.request_title}」"
    link = f"/engagements/{e.engagement_id}"
    expert = [e.expert_user_id] if e.expert_user_id else []
    broker = [e.broker_id] if e.broker_id else []
    why_ja, why_en = _why(e.reason)
    event = subject.rsplit(".", 1)[-1]
    if event == "created":
        # The expert and the proposing broker hear of it through matching.proposal.confirmed; the other
        # brokers of the prefecture learn that the request is matched.
        return [
            Message(
                [],
                "相談が成立しました",
                "A consultation was matched",
                f"相談{title}は {e.expert_name} さんに決まりました。",
                f"The consultation {title} was matched with {e.expert_name}.",
                link,
                brokers_of=e.prefecture,
                extra={"except_broker": e.broker_id or ""},
            )
        ]
    if event == "completed":
        return [
            Message(
                [*e.sme_user_ids, *expert],
                "相談が完了しました：評価をお願いします",
                "The consultation is complete: please rate it",
                f"相談{title}が完了しました。今後のマッチングのため、評価（1〜5）をお願いします。",
                f"The consultation {title} is complete. Please rate it (1-5) to improve future matching.",
                link,
            ),
            Message(
                broker,
                "相談が完了しました",
                "A consultation is complete",
                f"相談{title}（{e.expert_name} さん）が完了しました。",
                f"The consultation {title} with {e.expert_name} is complete.",
                link,
            ),
        ]
    if event == "cancelled":
        return [
            Message(
                [*e.sme_user_ids, *expert, *broker],
                "依頼が取り消されました",
                "The engagement was cancelled",
                f"相談{title}の依頼（{e.expert_name} さん）が取り消されました。{why_ja}\n"
                "相談は再び受付中になり、支援機関が別の専門家を提案できます。",
                f"The engagement for {title} with {e.expert_name} was cancelled.{why_en}\n"
                "The request is open again; a broker may propose another expert.",
                link,
            )
        ]
    if event == "rated":
        rated_by_sme = e.side == "sme"
        return [
            Message(
                expert if rated_by_sme else e.sme_user_ids,
                "評価が届きました",
                "You have been rated",
                f"相談{title}について{'中小企業' if rated_by_sme else '専門家'}から評価（{e.stars}）が届きました。",
                f"The {'SME' if rated_by_sme else 'expert'} rated the consultation {title} ({e.stars}/5).",
                link,
            )
        ]
    return []


def _request_messages(subject: str, r: RequestChangedV1) -> list[Message]:
    title = f"「{r.request_title}」"
    link = f"/requests/{r.request_id}"
    why_ja, why_en = _why(r.reason)
    if subject == Subjects.REQUEST_CANCELLED:
        return [
            Message(
                r.sme_user_ids,
                "相談が取り消されました",
                "The request was cancelled",
                f"相談{title}は取り消されました。{why_ja}",
                f"The request {title} was cancelled.{why_en}",
                link,
                brokers_of=r.prefecture,
            )
        ]
    if subject == Subjects.REQUEST_COMPLETED:
        return [
            Message(
                [],
                "相談が完了しました",
                "A request is complete",
                f"相談{title}は完了しました。",
                f"The request {title} is complete.",
                link,
                brokers_of=r.prefecture,
            )
        ]
    return []


def _expert_messages(subject: str, s: ExpertStatusChangedV1) -> list[Message]:
    if not s.owner_user_id:  # an event from before owner_user_id travelled: nobody to tell
        return []
    link = f"/experts/{s.expert_id}"
    who = [s.owner_user_id]
    if subject == Subjects.EXPERT_CONFIRMATION_DUE:
        return [
            Message(
                who,
                "登録内容の確認をお願いします",
                "Please confirm your profile",
                f"プロフィールの内容が最新か確認してください。{s.reason_ja}\n確認しないと提案の対象外になることがあります。",
                f"Please confirm that your profile is up to date. {s.reason_en}\n"
                "Unconfirmed profiles may stop being proposed.",
                link,
            )
        ]
    if subject == Subjects.EXPERT_DEACTIVATED:
        return [
            Message(
                who,
                "登録が無効になりました",
                "Your profile was deactivated",
                f"あなたのプロフィールは現在無効です。{s.reason_ja}\n内容を更新すると再び有効になります。",
                f"Your profile is inactive. {s.reason_en}\nUpdate it to make it active again.",
                link,
            )
        ]
    if subject == Subjects.EXPERT_REACTIVATED:
        return [
            Message(
                who,
                "登録が再び有効になりました",
                "Your profile is active again",
                f"あなたのプロフィールは再び有効です。{s.reason_ja}",
                f"Your profile is active again. {s.reason_en}",
                link,
            )
        ]
    return []


def messages_for(envelope: EventEnvelope) -> tuple[list[Message], str | None]:
    """What the event says to whom, and who caused it (not told)."""
    subject = envelope.type
    if subject.startswith(Subjects.PROPOSAL_PREFIX + "."):
        proposal: ProposalChangedV1 = parse_event_data(envelope, subject)
        return _proposal_messages(subject, proposal), proposal.actor_id
    if subject.startswith(Subjects.ENGAGEMENT_PREFIX + "."):
        engagement: EngagementChangedV1 = parse_event_data(envelope, subject)
        return _engagement_messages(subject, engagement), engagement.actor_id
    if subject in (Subjects.REQUEST_CANCELLED, Subjects.REQUEST_COMPLETED):
        request: RequestChangedV1 = parse_event_data(envelope, subject)
        return _request_messages(subject, request), request.actor_id
    if subject.startswith(Subjects.SESSION_PREFIX + "."):
        day: SessionChangedV1 = parse_event_data(envelope, subject)
        return _session_messages(subject, day), None
    if subject.startswith(Subjects.PROJECT_PREFIX + "."):
        hub_project: HubProjectChangedV1 = parse_event_data(envelope, subject)
        return _project_messages(subject, hub_project), hub_project.actor_id
    if subject in TRUST_SUBJECTS:
        return _trust_messages(envelope), None
    if subject in PROFILES_SUBJECTS:
        status: ExpertStatusChangedV1 = parse_event_data(envelope, subject)
        return _expert_messages(subject, status), None
    return [], None


_REGULATED_LABELS = {
    "registration_number": ("登録番号", "registration number"),
    "registration_date": ("登録年月日", "registration date"),
    "renewal_deadline": ("更新期限", "renewal deadline"),
    "training": ("講習の受講記録", "training record"),
}


def _trust_messages(envelope: EventEnvelope) -> list[Message]:
    """Issue 9: the claimant hears the admin's verdict on their profile (with the reason of a rejection), the
    expert the verdict on a correction request, an invited user of the invitation (to accept or decline)."""
    subject = envelope.type
    if subject == Subjects.ORGANIZATION_INVITED:
        invited: OrganizationInvitationV1 = parse_event_data(envelope, subject)
        return [
            Message(
                [invited.user_id],
                "組織への招待が届きました",
                "You are invited to an organisation",
                f"「{invited.organization_name}」の担当者として招待されました。承諾するとメンバーになります。"
                "心当たりがなければ辞退してください。",
                f"You are invited to act for 「{invited.organization_name}」. Accept to become a member, or "
                "decline if you do not know it.",
                "/organizations/invitations",
            )
        ]
    if subject == Subjects.EXPERT_CORRECTION_DECIDED:
        c: CorrectionDecidedV1 = parse_event_data(envelope, subject)
        ja, en = _REGULATED_LABELS.get(c.field, (c.field, c.field))
        why_ja, why_en = _why(c.reason)
        accepted = c.decision == "accepted"
        return [
            Message(
                [c.user_id],
                f"訂正依頼が{'反映されました' if accepted else '却下されました'}",
                f"Your correction request was {'accepted' if accepted else 'rejected'}",
                f"{ja}の訂正依頼は{'運営者が確認し、反映しました。' if accepted else '却下されました。'}{why_ja}",
                f"The correction of your {en} was {'checked and applied' if accepted else 'rejected'}.{why_en}",
                f"/experts/{c.expert_id}",
            )
        ]
    v: ExpertVerificationV1 = parse_event_data(envelope, subject)
    number_ja = f"（登録番号 {v.registration_number}）" if v.registration_number else ""
    number_en = f" (registration number {v.registration_number})" if v.registration_number else ""
    if subject == Subjects.EXPERT_VERIFIED:
        return [
            Message(
                [v.user_id],
                "登録内容が確認されました",
                "Your profile has been verified",
                f"運営者が登録簿と照合し、{v.expert_name} さんのプロフィール{number_ja}を確認しました。"
                "一覧・検索に掲載され、相談の提案対象になります。",
                f"The operator checked your profile{number_en} against the official register. It is now listed, "
                "searchable and may be proposed for consultations.",
                f"/experts/{v.expert_id}",
            )
        ]
    why_ja, why_en = _why(v.reason)
    return [
        Message(
            [v.user_id],
            "登録内容を確認できませんでした",
            "Your profile could not be verified",
            f"運営者が登録簿と照合した結果、プロフィール{number_ja}を確認できませんでした。{why_ja}\n"
            "内容に誤りがある場合は訂正を依頼してください。",
            f"The operator could not verify your profile{number_en} against the official register.{why_en}\n"
            "If something is wrong, please ask for a correction.",
            "/experts/me",
        )
    ]


# --- 相談会 and hub projects (issue 11) ----------------------------------------------------------------


def _place(day: SessionChangedV1) -> tuple[str, str]:
    """Where the day is held: the venue and its prefecture (the prefecture alone for older events)."""
    prefecture = prefectures().get(day.venue_prefecture)
    name = prefecture.name if prefecture else day.venue_prefecture
    return (f"{day.venue}（{name}）", f"{day.venue} ({name})") if day.venue else (name, name)


def _meeting_lines(day: SessionChangedV1, meetings: list[SessionMeetingV1], expert_side: bool) -> tuple[str, str]:
    """One line per meeting in slot order: the time and who it is with (the SME's organisation for the expert,
    the expert for the SME)."""
    ja, en = [], []
    for m in sorted(meetings, key=lambda m: m.slot):
        when = f"{day.date.isoformat()} {m.start}〜{m.end}"
        if expert_side:
            who = m.organization_name or "中小企業"
            ja.append(f"・{when}　{who} 様")
            en.append(f"- {day.date.isoformat()} {m.start}-{m.end} with {m.organization_name or 'an SME'}")
        else:
            ja.append(f"・{when}　{m.expert_name} さん")
            en.append(f"- {day.date.isoformat()} {m.start}-{m.end} with {m.expert_name}")
    return "\n".join(ja), "\n".join(en)


def _session_messages(subject: str, day: SessionChangedV1) -> list[Message]:
    """Published: every expert and SME with a meeting hears when, where and with whom, and every unserved SME
    why. Changed (solved again): only the people whose meetings are new, moved or gone, with their meetings
    now. Registered: the broker of the day. Created: the invited experts. Cancelled: everyone with a meeting or a
    registration left out, and the invited experts."""
    title = f"「{day.title}」"
    place_ja, place_en = _place(day)
    schedule = f"/api/v1/sessions/{day.session_id}/schedule.ics"  # the reader's own meetings, for a calendar
    event = subject.rsplit(".", 1)[-1]
    if event == "registered":
        return [
            Message(
                [day.broker_id],
                "相談会に申込がありました",
                "An SME registered for a consultation day",
                f"相談会{title}（{day.date.isoformat()}、{place_ja}）に中小企業から申込がありました。"
                "申込がそろったら割当を行ってください。",
                f"An SME registered for the consultation day {title} ({day.date.isoformat()}, {place_en}). "
                "Solve the plan once the registrations are in.",
                f"/api/v1/sessions/{day.session_id}",
            )
        ]
    if event == "created":
        if not day.invited_expert_user_ids:
            return []
        return [
            Message(
                list(day.invited_expert_user_ids),
                "相談会に招待されました",
                "You are invited to a consultation day",
                f"{day.date.isoformat()} に{place_ja}で開かれる相談会{title}に、面談を担当する専門家として招待されました。"
                "中小企業の申込が集まると、支援機関が面談の割当を行い、決まった面談をお知らせします。",
                f"You are invited as an expert to the consultation day {title} on {day.date.isoformat()} at "
                f"{place_en}. Once SMEs have registered, the broker plans the meetings and you will be told yours.",
                f"/api/v1/sessions/{day.session_id}",
            )
        ]
    if event == "cancelled":
        everyone = [
            *(m.expert_user_id for m in day.meetings if m.expert_user_id),
            *(m.sme_user_id for m in day.meetings),
        ]
        return [
            Message(
                [*everyone, *day.affected_user_ids, *day.unserved_sme_user_ids, *day.invited_expert_user_ids],
                "相談会は中止されました",
                "The consultation day was cancelled",
                f"{day.date.isoformat()} に{place_ja}で予定していた相談会{title}は中止されました。",
                f"The consultation day {title} on {day.date.isoformat()} at {place_en} was cancelled.",
                "/notifications",
            )
        ]
    if event not in ("published", "changed"):
        return []
    changed = event == "changed"
    concerned = set(day.affected_user_ids) if changed else None  # published: everyone with a meeting
    by_user: dict[str, tuple[list[SessionMeetingV1], bool]] = {}
    for m in day.meetings:
        if m.expert_user_id:
            by_user.setdefault(m.expert_user_id, ([], True))[0].append(m)
        by_user.setdefault(m.sme_user_id, ([], False))[0].append(m)
    messages = []
    for user_id, (meetings, expert_side) in by_user.items():
        if concerned is not None and user_id not in concerned:
            continue
        lines_ja, lines_en = _meeting_lines(day, meetings, expert_side)
        messages.append(
            Message(
                [user_id],
                "相談会の面談時間が変更されました" if changed else "相談会の面談が決まりました",
                "Your consultation day meetings have changed" if changed else "Your consultation day meetings",
                f"相談会{title}（会場: {place_ja}）の面談{'が次のとおり変更されました' if changed else 'が決まりました'}。\n"
                f"{lines_ja}\n当日は会場にお越しください。",
                f"Your meetings at the consultation day {title} (venue: {place_en}) "
                f"{'have changed; they are now' if changed else 'are'}:\n{lines_en}\nPlease come to the venue.",
                schedule,
            )
        )
    for unserved in day.unserved:
        if concerned is not None and unserved.sme_user_id not in concerned:
            continue
        messages.append(
            Message(
                [unserved.sme_user_id],
                "相談会の面談を設定できませんでした",
                "No meeting could be arranged at the consultation day",
                f"相談会{title}（{day.date.isoformat()}、{place_ja}）では、申込に合う面談を設定できませんでした。\n"
                f"理由: {unserved.reason_ja}\n支援機関から別の相談会や個別の相談をご案内します。",
                f"No meeting could be arranged for you at the consultation day {title} "
                f"({day.date.isoformat()}, {place_en}).\nReason: {unserved.reason_en}\n"
                "The broker will suggest another day or a consultation of your own.",
                f"/api/v1/sessions/{day.session_id}",
            )
        )
    reasons = {u.sme_user_id for u in day.unserved}
    placed = set(by_user) | reasons
    # Older events name the unserved without a reason; after a change, people whose meetings are gone.
    left_out = [u for u in [*day.unserved_sme_user_ids, *(concerned or [])] if u not in placed]
    if left_out:
        messages.append(
            Message(
                list(dict.fromkeys(left_out)),
                "相談会の面談がなくなりました" if changed else "相談会の面談を設定できませんでした",
                "Your consultation day meeting was removed" if changed else "No meeting could be arranged",
                f"相談会{title}（{day.date.isoformat()}、{place_ja}）で、あなたの面談は予定されていません。"
                "詳しくは支援機関にお問い合わせください。",
                f"You have no meeting at the consultation day {title} ({day.date.isoformat()}, {place_en}). "
                "Please ask the broker for details.",
                f"/api/v1/sessions/{day.session_id}",
            )
        )
    return messages


def _project_messages(subject: str, p: HubProjectChangedV1) -> list[Message]:
    """A confirmed team: its learners and its 登録セキスペ mentor hear of the project, when it starts and for
    how long. A proposed team is a draft the hub staff may solve again, so nobody is told of it yet."""
    if subject != Subjects.PROJECT_TEAM_CONFIRMED:
        return []
    title = f"「{p.title}」"
    starts_ja = f"{p.start_on.isoformat()} から" if p.start_on else ""
    starts_en = f" from {p.start_on.isoformat()}" if p.start_on else ""
    weeks_ja = f"{p.weeks}週間" if p.weeks else ""
    weeks_en = f" for {p.weeks} weeks" if p.weeks else ""
    prefecture = prefectures().get(p.prefecture)
    region = prefecture.name if prefecture else p.prefecture
    remote_ja, remote_en = ("（リモート参加可）", " (remote work possible)") if p.remote_ok else ("", "")
    return [
        Message(
            p.member_user_ids,
            "地域企業協働プログラムのチームが確定しました",
            "Your hub project team is confirmed",
            f"マナビDX Quest 地域企業協働プログラムのプロジェクト{title}（{region}{remote_ja}）のチームに確定しました。"
            f"{starts_ja}{weeks_ja}の予定です。ハブの担当者から連絡があります。",
            f"You are in the confirmed team of the マナビDX Quest hub project {title} ({region}{remote_en})"
            f"{starts_en}{weeks_en}. The hub staff will contact you.",
            f"/api/v1/projects/{p.project_id}",
        )
    ]


def _covering_brokers(session: Session, prefecture: str) -> list[str]:
    return [
        user.id
        for user in repository.active_users_with_role(session, Role.BROKER.value)
        if prefecture in user.prefectures
    ]


def _mail(user: User, notification: Notification, public_url: str) -> MailMessage:
    url = public_url.rstrip("/") + notification.link
    body = (
        f"{user.display_name} 様\n\n{notification.body_ja}\n\n詳細: {url}\n\n"
        "――――――――――――――――――――\n\n"
        f"Dear {user.display_name},\n\n{notification.body_en}\n\nDetails: {url}\n\n"
        "-- \nつなぐ Tsunagu（このメールは送信専用です / This address does not receive replies）\n"
    )
    return MailMessage(
        notification_id=notification.id,
        to_address=user.email,
        subject=f"【つなぐ】{notification.title_ja} / {notification.title_en}",
        body=body,
    )


def apply_event(session: Session, envelope: EventEnvelope, public_url: str) -> int:
    """Tell everyone the event concerns, once per event id (the caller commits). Returns how many people."""
    if not repository.claim(session, envelope.id, NOTIFICATIONS_CONSUMER):
        return 0
    messages, actor = messages_for(envelope)
    told: set[str] = set()
    if actor:
        told.add(actor)  # whoever made the change is not told about it
    wanted: list[tuple[str, Message]] = []
    for message in messages:
        user_ids = list(message.user_ids)
        if message.brokers_of:
            skip = message.extra.get("except_broker")
            user_ids += [b for b in _covering_brokers(session, message.brokers_of) if b != skip]
        for user_id in user_ids:
            if user_id and user_id not in told:
                told.add(user_id)
                wanted.append((user_id, message))
    users = {user.id: user for user in repository.users_by_ids(session, [user_id for user_id, _ in wanted])}
    count = 0
    for user_id, message in wanted:
        user = users.get(user_id)
        if user is None or not user.active:  # an id of a removed account, or a seeded id with no account
            continue
        notification = Notification(
            user_id=user_id,
            kind=envelope.type,
            event_id=envelope.id,
            title_ja=message.title_ja,
            title_en=message.title_en,
            body_ja=message.body_ja,
            body_en=message.body_en,
            link=message.link,
        )
        repository.add_notification(session, notification, _mail(user, notification, public_url))
        count += 1
    return count


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones: the answer is always UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def to_read(notification: Notification) -> NotificationRead:
    read = NotificationRead.model_validate(notification, from_attributes=True)
    return read.model_copy(update={"created_at": _aware(read.created_at), "read_at": _aware(read.read_at)})


def list_for(session: Session, user_id: str, *, limit: int, offset: int) -> NotificationPage:
    items, total = repository.notifications_of(session, user_id, limit=limit, offset=offset)
    return NotificationPage(
        items=[to_read(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
        unread=repository.unread_count(session, user_id),
    )


def mark_read(session: Session, user_id: str, notification_id: str, now: datetime) -> Notification:
    """Mark one of the caller's notifications read (404 for anyone else's: they learn nothing of it)."""
    notification = repository.notification_by_id(session, notification_id)
    if notification is None or notification.user_id != user_id:
        raise not_found("お知らせ", "Notification")
    if notification.read_at is None:
        notification.read_at = now
        session.add(notification)
    return notification

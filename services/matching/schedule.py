"""A 相談会's schedule as files people open elsewhere: iCalendar (RFC 5545, via the icalendar library) for
calendars, and CSV (UTF-8 with BOM, so Excel in Japan reads it) for the chamber's own lists. Pure formatting:
the meetings a reader may see are chosen in service.py; times are the venue's, Japan time."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from services.matching.models import ConsultationSession
from services.matching.schemas import MeetingRead
from tsunagu.reference import prefectures

JST = ZoneInfo("Asia/Tokyo")
CSV_HEADER = ["時間帯", "開始", "終了", "専門家", "専門家ID", "相談者（組織）", "登録ID", "スコア", "理由"]


def _at(day: date, clock: str) -> datetime:
    hours, minutes = (int(part) for part in clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=JST)


def to_ics(consultation: ConsultationSession, meetings: list[MeetingRead]) -> bytes:
    """One VEVENT per meeting (UID stable per session, slot and expert, so a re-published plan updates the
    reader's calendar instead of duplicating it)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Tsunagu//相談会//JA")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", consultation.title)
    location = consultation.venue or prefectures()[consultation.venue_prefecture].name
    for meeting in meetings:
        event = Event()
        event.add("uid", f"{consultation.id}-{meeting.slot}-{meeting.expert_id}@tsunagu")
        event.add("dtstamp", consultation.updated_at)
        event.add("dtstart", _at(consultation.date, meeting.start))
        event.add("dtend", _at(consultation.date, meeting.end))
        who = meeting.organization_name or "相談者"
        event.add("summary", f"{consultation.title}: {meeting.expert_name} × {who}")
        event.add("location", location)
        event.add("description", f"{meeting.reason_ja}\n{meeting.reason_en}")
        calendar.add_component(event)
    return calendar.to_ical()


def to_csv(meetings: list[MeetingRead]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for m in meetings:
        organisation = m.organization_name or ""
        if organisation[:1] in ("=", "+", "-", "@"):
            organisation = "'" + organisation  # never a spreadsheet formula
        writer.writerow(
            [m.slot, m.start, m.end, m.expert_name, m.expert_id, organisation, m.registration_id, m.score, m.reason_ja]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")

"""Jinja2 filters of the web UI: times in Japan time, yen, prefecture and topic names, states in words.

The services answer codes (``13``, ``ransomware``, ``ranked``); a person reads words. Proposals and
engagements carry their own Japanese state label from matching; a request's status does not, so its
words are here (the gateway may not import a service)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment

from tsunagu.reference import prefectures, topics

JST = ZoneInfo("Asia/Tokyo")

REQUEST_STATUS_JA = {
    "draft": "下書き",
    "submitted": "受付済み（候補者を選定中）",
    "ranked": "候補者選定済み",
    "matched": "専門家決定",
    "completed": "完了",
    "cancelled": "取消し",
}
# Proposal and engagement states, for the history's "from" column (their reads carry the "to" label).
STATE_JA = REQUEST_STATUS_JA | {
    "submitted": "受付済み",
    "proposed": "提案中",
    "accepted": "専門家が承諾",
    "declined": "専門家が辞退",
    "withdrawn": "提案取下げ",
    "expired": "期限切れ",
    "confirmed": "確定",
    "closed": "終了（他の専門家に決定）",
    "active": "支援中",
}
DELIVERY_JA = {"onsite": "訪問", "remote": "リモート", "either": "どちらでも"}
URGENCY_JA = {"low": "急がない", "normal": "通常", "high": "急ぎ"}
KIND_JA = {"sekisupe": "登録セキスペ", "dx_talent": "DX人材"}
FEE_UNIT_JA = {"hour": "時間", "day": "日", "engagement": "案件"}
AVAILABILITY_JA = {"available": "対応可能", "limited": "一部対応可能", "unavailable": "対応不可"}
VISIBILITY_JA = {"public": "公開", "brokers": "支援機関のみ", "private": "非公開"}
ANSWER_JA = {"yes": "はい", "no": "いいえ", "unknown": "わからない", "partly": "一部"}


def _parse(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=JST)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def jst(value: Any, with_time: bool = True) -> str:
    moment = _parse(value)
    if moment is None:
        return "—"
    local = moment.astimezone(JST)
    return local.strftime("%Y年%-m月%-d日 %H:%M" if with_time else "%Y年%-m月%-d日")


def jdate(value: Any) -> str:
    if isinstance(value, str) and len(value) == 10:
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value.year}年{value.month}月{value.day}日"
    return jst(value, with_time=False)


def age(value: Any) -> str:
    """How long ago, in words (for the broker's queue)."""
    moment = _parse(value)
    if moment is None:
        return "—"
    seconds = max(0, (datetime.now(UTC) - moment).total_seconds())
    if seconds < 3600:
        return f"{int(seconds // 60)}分前"
    if seconds < 86400:
        return f"{int(seconds // 3600)}時間前"
    return f"{int(seconds // 86400)}日前"


def age_days(value: Any) -> int:
    moment = _parse(value)
    return 0 if moment is None else int((datetime.now(UTC) - moment).total_seconds() // 86400)


def yen(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{int(value):,}円"


def prefecture_name(code: Any) -> str:
    found = prefectures().get(str(code))
    return found.name if found else str(code)


def topic_label(topic_id: Any) -> str:
    found = topics().get(str(topic_id))
    return found.label_ja if found else str(topic_id)


def install_filters(env: Environment) -> None:
    env.filters.update(
        jst=jst,
        jdate=jdate,
        age=age,
        age_days=age_days,
        yen=yen,
        prefecture=prefecture_name,
        topic=topic_label,
        request_status=lambda s: REQUEST_STATUS_JA.get(s, s),
        state=lambda s: STATE_JA.get(s, s),
        delivery=lambda s: DELIVERY_JA.get(s, s),
        urgency=lambda s: URGENCY_JA.get(s, s),
        kind=lambda s: KIND_JA.get(s, s),
        fee_unit=lambda s: FEE_UNIT_JA.get(s, s or ""),
        availability=lambda s: AVAILABILITY_JA.get(s, s or "—"),
        visibility=lambda s: VISIBILITY_JA.get(s, s),
        answer=lambda s: ANSWER_JA.get(s, s),
    )

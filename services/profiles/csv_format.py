"""The CSV format of the active list (Excel in Japanese offices: Shift_JIS/CP932 or UTF-8): the columns
and their Japanese headers, encoding detection, the cell parsers (a row -> a POST /experts body) and the
cell formatters (a body -> a row). The import (importer.py) and the export (exporter.py) share it, so the
export is always importable. See docs/profiles.md for the header mapping and the cell formats.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, Literal

from tsunagu.errors import ApiError, FieldError
from tsunagu.reference import dss_roles, topics
from tsunagu.types import clean_line

Encoding = Literal["auto", "utf-8", "cp932"]

# Canonical column -> the Japanese header the export writes. Either is accepted on import (the
# Japanese one after NFKC, so 全角/半角 brackets do not matter).
COLUMNS: dict[str, str] = {
    "id": "ID",
    "kind": "種別",
    "external_id": "外部ID",
    "registration_number": "登録番号",
    "name": "氏名",
    "name_kana": "氏名かな",
    "registration_date": "登録年月日",
    "renewal_deadline": "更新期限",
    "training_online": "オンライン講習受講日",
    "training_practical": "実践講習受講日",
    "affiliation": "所属",
    "contact_email": "メールアドレス",
    "contact_phone": "電話番号",
    "prefectures": "対応都道府県",
    "onsite": "訪問対応",
    "remote": "リモート対応",
    "strengths": "得意分野",
    "skills": "スキル",
    "industries": "業種",
    "services": "提供サービス",
    "qualifications": "保有資格",
    "fee_min_yen": "報酬下限（円）",
    "fee_max_yen": "報酬上限（円）",
    "fee_unit": "報酬単位",
    "capacity": "同時対応可能数",
    "bio": "自己紹介",
    "dss_roles": "デジタルスキル標準ロール",
    "programme_status": "マナビDX区分",
    "programme_cohort_year": "マナビDX受講年度",
    "case_study_completed": "ケーススタディ修了",
    "regional_collaboration": "地域企業協働参加",
    "availability": "稼働状況",
    "visibility": "公開設定",
    "owner_user_id": "ユーザーID",
    "last_confirmed_at": "最終確認日時",
}
# Written by the export for the reader; ignored by the import (the rules decide the status).
EXPORT_ONLY: dict[str, str] = {"active": "掲載状態", "status_reason": "停止理由"}
LIST_SEPARATOR = ";"

_KINDS = {
    "sekisupe": "sekisupe",
    "登録セキスペ": "sekisupe",
    "情報処理安全確保支援士": "sekisupe",
    "支援士": "sekisupe",
    "dx_talent": "dx_talent",
    "dx人材": "dx_talent",
    "マナビdx": "dx_talent",
    "マナビdx quest": "dx_talent",
}
_TRUE = {"1", "true", "yes", "y", "可", "○", "〇", "◯", "はい", "有", "あり", "対応可"}
_FALSE = {"0", "false", "no", "n", "不可", "×", "✕", "いいえ", "無", "なし", "-", "対応不可"}
_FEE_UNITS = {
    "hour": "hour",
    "時間": "hour",
    "1時間": "hour",
    "時給": "hour",
    "day": "day",
    "日": "day",
    "1日": "day",
    "日当": "day",
    "engagement": "engagement",
    "案件": "engagement",
    "1件": "engagement",
    "件": "engagement",
}
_AVAILABILITY = {
    "available": "available",
    "可能": "available",
    "受付中": "available",
    "limited": "limited",
    "一部可能": "limited",
    "要相談": "limited",
    "unavailable": "unavailable",
    "不可": "unavailable",
    "受付停止": "unavailable",
}
_PROGRAMME = {
    "participant": "participant",
    "受講中": "participant",
    "参加者": "participant",
    "graduate": "graduate",
    "修了": "graduate",
    "修了生": "graduate",
    "修了者": "graduate",
}
_LEVELS = {
    "public": "public",
    "公開": "public",
    "brokers": "brokers",
    "支援機関": "brokers",
    "支援機関のみ": "brokers",
    "private": "private",
    "非公開": "private",
}
_DATE = re.compile(r"^(\d{4})\s*[-/年.]\s*(\d{1,2})\s*[-/月.]\s*(\d{1,2})\s*日?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(ApiError):
    """The file as a whole cannot be imported (nothing is written)."""

    def __init__(self, message_ja: str, message_en: str, line: int | None = None) -> None:
        where_ja = f"{line}行目: " if line else ""
        where_en = f"line {line}: " if line else ""
        super().__init__(
            422,
            "import_failed",
            f"ファイルを取り込めません。{where_ja}{message_ja}",
            f"The file cannot be imported: {where_en}{message_en}",
            [FieldError("file", f"{where_ja}{message_ja}", f"{where_en}{message_en}")],
        )


class CellError(ValueError):
    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja, self.en = ja, en


# --- encoding ----------------------------------------------------------------------------------


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM) or CP932, judged on the first bytes; anything else is refused."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            "UTF-16 のファイルには対応していません。UTF-8 か Shift_JIS（CP932）で保存してください",
            "UTF-16 files are not supported; save as UTF-8 or Shift_JIS (CP932)",
        )
    if b"\x00" in head:
        raise ImportFileError("CSV ファイルではありません（バイナリデータ）", "This is not a CSV file (binary data)")
    for encoding in ("utf-8", "cp932"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFileError(
        "文字コードを判別できません。UTF-8 か Shift_JIS（CP932）で保存してください",
        "Unknown character encoding; save as UTF-8 or Shift_JIS (CP932)",
    )


def encoding_name(encoding: str) -> str:
    return {"utf-8-sig": "utf-8", "cp932": "cp932"}.get(encoding, encoding)


# --- cells -------------------------------------------------------------------------------------


def header_key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


# Header (normalised) -> canonical column: the key, its Japanese header, and a few common variants.
HEADER_INDEX: dict[str, str] = {
    header: key for key, label in (COLUMNS | EXPORT_ONLY).items() for header in (header_key(key), header_key(label))
} | {
    header_key("ふりがな"): "name_kana",
    header_key("フリガナ"): "name_kana",
    header_key("氏名カナ"): "name_kana",
}


def cell(value: str | None) -> str:
    text = (value or "").strip()
    # An exported cell that would start a spreadsheet formula carries a protective leading quote.
    if text.startswith("'") and text[1:2] in _FORMULA_START and text[1:2]:
        text = text[1:]
    return text


def _split(text: str) -> list[str]:
    return [part.strip() for part in unicodedata.normalize("NFKC", text).split(LIST_SEPARATOR) if part.strip()]


def _choice(text: str, table: dict[str, str], what_ja: str, what_en: str) -> str:
    key = unicodedata.normalize("NFKC", text).strip().lower()
    if key not in table:
        raise CellError(f"{what_ja}「{text}」は使えません", f"Unknown {what_en}: {text}")
    return table[key]


def _bool(text: str) -> bool:
    key = unicodedata.normalize("NFKC", text).strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise CellError(f"「{text}」は 可/不可（1/0）で入力してください", f"Use yes/no (1/0), not {text!r}")


def _date(text: str) -> str:
    match = _DATE.match(unicodedata.normalize("NFKC", text).strip())
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    except ValueError:
        raise CellError(
            f"日付「{text}」は YYYY-MM-DD 形式で入力してください", f"Dates are YYYY-MM-DD, not {text!r}"
        ) from None


def _int(text: str) -> int:
    # "￥10,000", "10,000円"; in Shift_JIS the yen sign is byte 0x5C, which CP932 decodes as a backslash.
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(",", "").lstrip("¥\\").removesuffix("円").strip()
    if not re.fullmatch(r"-?\d{1,12}", cleaned):
        raise CellError(f"「{text}」は整数で入力してください", f"{text!r} is not a whole number")
    return int(cleaned)


_TOPIC_BY_LABEL = {clean_line(topic.label_ja): topic.id for topic in topics().values()}
_ROLE_BY_LABEL = {clean_line(role.label_ja): role.id for role in dss_roles().values()}


def _pairs(text: str, by_label: dict[str, str], name: str, level: str, what_ja: str) -> list[dict[str, Any]]:
    """'ransomware:3;incident_response:2' (ids or Japanese labels) -> [{"topic": ..., "depth": 3}, ...]."""
    result = []
    for part in _split(text):
        label, separator, number = part.rpartition(":")
        if not separator:
            raise CellError(
                f"{what_ja}は「名前:数値」の形で入力してください（例: ransomware:3）",
                f"Write {name}:{level} pairs, e.g. ransomware:3",
            )
        label = label.strip()
        result.append({name: by_label.get(clean_line(label), label), level: _int(number)})
    return result


def _visibility(text: str) -> dict[str, str]:
    levels: dict[str, str] = {}
    for part in _split(text):
        key, separator, level = part.partition("=")
        if not separator:
            raise CellError("公開設定は「項目=公開」の形で入力してください", "Write field=level pairs, e.g. bio=public")
        levels[key.strip()] = _choice(level, _LEVELS, "公開レベル", "visibility level")
    return levels


def row_to_body(row: dict[str, str]) -> tuple[dict[str, Any], datetime | None, list[tuple[str, CellError]]]:
    """A CSV row (canonical keys) -> the POST /experts body, the confirmation time, and cell errors."""
    body: dict[str, Any] = {}
    errors: list[tuple[str, CellError]] = []
    confirmed: datetime | None = None

    def put(column: str, convert, target: str | None = None) -> None:
        text = cell(row.get(column))
        if not text:
            return
        try:
            body[target or column] = convert(text)
        except CellError as error:
            errors.append((column, error))

    put("kind", lambda text: _choice(text, _KINDS, "種別", "kind"))
    body.setdefault("kind", "sekisupe")  # the active list is of 登録セキスペ unless a row says otherwise
    for column in (
        "external_id",
        "registration_number",
        "name",
        "name_kana",
        "affiliation",
        "contact_email",
        "contact_phone",
        "bio",
        "owner_user_id",
    ):
        put(column, lambda text: text)
    for column in ("registration_date", "renewal_deadline"):
        put(column, _date)
    for column in ("prefectures", "skills", "industries", "services", "qualifications"):
        put(column, _split)
    for column in ("onsite", "remote"):
        put(column, _bool)
    for column in ("fee_min_yen", "fee_max_yen", "capacity"):
        put(column, _int)
    put("fee_unit", lambda text: _choice(text, _FEE_UNITS, "報酬単位", "fee unit"))
    put("availability", lambda text: _choice(text, _AVAILABILITY, "稼働状況", "availability"))
    put("strengths", lambda text: _pairs(text, _TOPIC_BY_LABEL, "topic", "depth", "得意分野"))
    put("dss_roles", lambda text: _pairs(text, _ROLE_BY_LABEL, "role", "level", "ロール"))
    put("visibility", _visibility)
    training: dict[str, list[str]] = {}
    for column, course in (("training_online", "online"), ("training_practical", "practical")):
        put(column, lambda text: [_date(part) for part in _split(text)], f"_{course}")
        if f"_{course}" in body:
            training[course] = body.pop(f"_{course}")
    if training:  # both cells empty: no training record (not "none taken")
        body["training"] = {"online": training.get("online", []), "practical": training.get("practical", [])}
    programme: dict[str, Any] = {}
    for column, key, convert in (
        ("programme_status", "status", lambda text: _choice(text, _PROGRAMME, "マナビDX区分", "programme status")),
        ("programme_cohort_year", "cohort_year", _int),
        ("case_study_completed", "case_study_completed", _bool),
        ("regional_collaboration", "regional_collaboration", _bool),
    ):
        put(column, convert, f"_{key}")
        if f"_{key}" in body:
            programme[key] = body.pop(f"_{key}")
    if programme:
        body["programme"] = programme
    text = cell(row.get("last_confirmed_at"))
    if text:
        try:
            confirmed = _datetime(text)
        except CellError as error:
            errors.append(("last_confirmed_at", error))
    return body, confirmed, errors


def _datetime(text: str) -> datetime:
    normalized = unicodedata.normalize("NFKC", text).strip()
    try:
        value = datetime.fromisoformat(normalized.replace("/", "-"))
    except ValueError:
        value = datetime.fromisoformat(_date(normalized))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > datetime.now(UTC):
        raise CellError("未来の日時は指定できません", "The time may not be in the future")
    return value


def column_of(location: tuple[Any, ...]) -> str:
    """Where a validation error of the body points in the CSV."""
    head = str(location[0]) if location else "body"
    if head == "training" and len(location) > 1:
        return f"training_{location[1]}"
    if head == "programme" and len(location) > 1:
        return {"status": "programme_status", "cohort_year": "programme_cohort_year"}.get(
            str(location[1]), str(location[1])
        )
    return head


# --- formatting (the export) ------------------------------------------------------------------

EXPORT_HEADER = list(COLUMNS.values()) + list(EXPORT_ONLY.values())


def _safe(value: str) -> str:
    """A cell that Excel would run as a formula gets a leading quote (removed again on import)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _joined(values: Iterable[str]) -> str:
    return LIST_SEPARATOR.join(values)


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("1" if value else "0")


def body_cells(body: dict[str, Any]) -> list[str]:
    """A POST /experts body (JSON types, plus optional id, owner_user_id, last_confirmed_at and the
    export-only status) as one CSV row in COLUMNS order: what the export writes and the import reads."""
    training = body.get("training")
    programme = body.get("programme") or {}
    values: dict[str, Any] = {key: body.get(key) for key in list(COLUMNS) + list(EXPORT_ONLY)}
    values |= {
        "training_online": _joined(training.get("online", [])) if training else "",
        "training_practical": _joined(training.get("practical", [])) if training else "",
        "prefectures": _joined(body.get("prefectures", [])),
        "onsite": _yes_no(body.get("onsite")),
        "remote": _yes_no(body.get("remote")),
        "strengths": _joined(f"{item['topic']}:{item['depth']}" for item in body.get("strengths", [])),
        "skills": _joined(body.get("skills", [])),
        "industries": _joined(body.get("industries", [])),
        "services": _joined(body.get("services", [])),
        "qualifications": _joined(body.get("qualifications", [])),
        "dss_roles": _joined(f"{item['role']}:{item['level']}" for item in body.get("dss_roles", [])),
        "programme_status": programme.get("status"),
        "programme_cohort_year": programme.get("cohort_year"),
        "case_study_completed": _yes_no(programme.get("case_study_completed")),
        "regional_collaboration": _yes_no(programme.get("regional_collaboration")),
        "visibility": _joined(f"{key}={level}" for key, level in sorted((body.get("visibility") or {}).items())),
    }
    if "active" in body:
        values["active"] = "掲載中" if body["active"] else "停止中"
    return [_safe("" if values[key] is None else str(values[key])) for key in list(COLUMNS) + list(EXPORT_ONLY)]


def _geta(error: UnicodeEncodeError) -> tuple[str, int]:
    # Characters Shift_JIS cannot hold become 〓 (geta), the customary JIS substitute.
    return "〓" * (error.end - error.start), error.end


GETA_ERRORS = "tsunagu_geta"
codecs.register_error(GETA_ERRORS, _geta)

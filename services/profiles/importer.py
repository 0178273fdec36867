"""CSV import and export of the active list (Excel in Japanese offices: Shift_JIS/CP932 or UTF-8).

The import streams: the file is decoded and parsed row by row and written in batches, so memory does not
grow with the file. Each row is validated by the same model as the JSON API (schemas.ExpertCreate).
A bad row is reported (line, field, reason in Japanese and English) and not written; good rows are
upserted, keyed by ID, else 登録番号, else 外部ID. A row identical to what is stored changes nothing (no
new version, no event), so importing the same file twice changes nothing the second time.

The whole import is one transaction: a file-level problem (wrong encoding, missing columns, a broken
CSV) anywhere in the file rolls everything back, so nothing is half-written. See docs/profiles.md for
the header mapping and the cell formats.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any, Literal

from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from tsunagu.db import utcnow
from tsunagu.events import EventEnvelope
from tsunagu.outbox import add_events
from tsunagu.errors import ApiError, FieldError, validation_error
from tsunagu.reference import dss_roles, topics

from services.profiles import repository
from services.profiles.events import expert_envelopes
from services.profiles.freshness import apply_status, evaluate, status_change
from services.profiles.models import Expert, OutboxRecord, aware, new_id
from services.profiles.schemas import ExpertCreate, clean_line
from services.profiles.service import apply_profile, content_hash, profile_document, profile_of
from services.profiles.settings import ProfilesSettings

log = logging.getLogger(__name__)

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
MAX_REPORTED_ERRORS = 1000

_KINDS = {"sekisupe": "sekisupe", "登録セキスペ": "sekisupe", "情報処理安全確保支援士": "sekisupe", "支援士": "sekisupe",
          "dx_talent": "dx_talent", "dx人材": "dx_talent", "マナビdx": "dx_talent", "マナビdx quest": "dx_talent"}
_TRUE = {"1", "true", "yes", "y", "可", "○", "〇", "◯", "はい", "有", "あり", "対応可"}
_FALSE = {"0", "false", "no", "n", "不可", "×", "✕", "いいえ", "無", "なし", "-", "対応不可"}
_FEE_UNITS = {"hour": "hour", "時間": "hour", "1時間": "hour", "時給": "hour", "day": "day", "日": "day", "1日": "day",
              "日当": "day", "engagement": "engagement", "案件": "engagement", "1件": "engagement", "件": "engagement"}
_AVAILABILITY = {"available": "available", "可能": "available", "受付中": "available", "limited": "limited",
                 "一部可能": "limited", "要相談": "limited", "unavailable": "unavailable", "不可": "unavailable",
                 "受付停止": "unavailable"}
_PROGRAMME = {"participant": "participant", "受講中": "participant", "参加者": "participant", "graduate": "graduate",
              "修了": "graduate", "修了生": "graduate", "修了者": "graduate"}
_LEVELS = {"public": "public", "公開": "public", "brokers": "brokers", "支援機関": "brokers", "支援機関のみ": "brokers",
           "private": "private", "非公開": "private"}
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


class _CellError(ValueError):
    def __init__(self, ja: str, en: str) -> None:
        super().__init__(en)
        self.ja, self.en = ja, en


@dataclass
class RowError:
    line: int
    field: str
    column: str
    message_ja: str
    message_en: str
    key: str | None = None  # registration number / external id / id of the row, when readable


@dataclass
class ImportReport:
    encoding: str = ""
    dry_run: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def reject(self, error: RowError) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "errors": [error.__dict__ for error in self.errors],
            "errors_truncated": max(0, self.rejected - len(self.errors)),
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


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


def _encoding_name(encoding: str) -> str:
    return {"utf-8-sig": "utf-8", "cp932": "cp932"}.get(encoding, encoding)


# --- cells -------------------------------------------------------------------------------------


def _header_key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).lower()


_HEADER_INDEX: dict[str, str] = {}
for _key, _label in (COLUMNS | EXPORT_ONLY).items():
    _HEADER_INDEX[_header_key(_key)] = _key
    _HEADER_INDEX[_header_key(_label)] = _key
_HEADER_INDEX |= {_header_key("ふりがな"): "name_kana", _header_key("フリガナ"): "name_kana", _header_key("氏名カナ"): "name_kana"}


def _cell(value: str | None) -> str:
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
        raise _CellError(f"{what_ja}「{text}」は使えません", f"Unknown {what_en}: {text}")
    return table[key]


def _bool(text: str) -> bool:
    key = unicodedata.normalize("NFKC", text).strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise _CellError(f"「{text}」は 可/不可（1/0）で入力してください", f"Use yes/no (1/0), not {text!r}")


def _date(text: str) -> str:
    match = _DATE.match(unicodedata.normalize("NFKC", text).strip())
    try:
        if match is None:
            raise ValueError
        return date(int(match[1]), int(match[2]), int(match[3])).isoformat()
    except ValueError:
        raise _CellError(f"日付「{text}」は YYYY-MM-DD 形式で入力してください", f"Dates are YYYY-MM-DD, not {text!r}") from None


def _int(text: str) -> int:
    # "￥10,000", "10,000円"; in Shift_JIS the yen sign is byte 0x5C, which CP932 decodes as a backslash.
    cleaned = unicodedata.normalize("NFKC", text).strip().replace(",", "").lstrip("¥\\").removesuffix("円").strip()
    if not re.fullmatch(r"-?\d{1,12}", cleaned):
        raise _CellError(f"「{text}」は整数で入力してください", f"{text!r} is not a whole number")
    return int(cleaned)


_TOPIC_BY_LABEL = {clean_line(topic.label_ja): topic.id for topic in topics().values()}
_ROLE_BY_LABEL = {clean_line(role.label_ja): role.id for role in dss_roles().values()}


def _pairs(text: str, by_label: dict[str, str], name: str, level: str, what_ja: str) -> list[dict[str, Any]]:
    """'ransomware:3;incident_response:2' (ids or Japanese labels) -> [{"topic": ..., "depth": 3}, ...]."""
    result = []
    for part in _split(text):
        label, separator, number = part.rpartition(":")
        if not separator:
            raise _CellError(
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
            raise _CellError("公開設定は「項目=公開」の形で入力してください", "Write field=level pairs, e.g. bio=public")
        levels[key.strip()] = _choice(level, _LEVELS, "公開レベル", "visibility level")
    return levels


def row_to_body(row: dict[str, str]) -> tuple[dict[str, Any], datetime | None, list[tuple[str, _CellError]]]:
    """A CSV row (canonical keys) -> the POST /experts body, the confirmation time, and cell errors."""
    body: dict[str, Any] = {}
    errors: list[tuple[str, _CellError]] = []
    confirmed: datetime | None = None

    def put(column: str, convert, target: str | None = None) -> None:  # noqa: ANN001
        text = _cell(row.get(column))
        if not text:
            return
        try:
            body[target or column] = convert(text)
        except _CellError as error:
            errors.append((column, error))

    put("kind", lambda text: _choice(text, _KINDS, "種別", "kind"))
    body.setdefault("kind", "sekisupe")  # the active list is of 登録セキスペ unless a row says otherwise
    for column in ("external_id", "registration_number", "name", "name_kana", "affiliation", "contact_email",
                   "contact_phone", "bio", "owner_user_id"):
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
    text = _cell(row.get("last_confirmed_at"))
    if text:
        try:
            confirmed = _datetime(text)
        except _CellError as error:
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
        raise _CellError("未来の日時は指定できません", "The time may not be in the future")
    return value


# Where a validation error of the body points in the CSV.
def _column_of(location: tuple[Any, ...]) -> str:
    head = str(location[0]) if location else "body"
    if head == "training" and len(location) > 1:
        return f"training_{location[1]}"
    if head == "programme" and len(location) > 1:
        return {"status": "programme_status", "cohort_year": "programme_cohort_year"}.get(str(location[1]), str(location[1]))
    return head


# --- import ------------------------------------------------------------------------------------


@dataclass
class _Row:
    line: int
    body: ExpertCreate
    confirmed: datetime | None
    row_id: str | None
    key: str


class _DecodeFailure(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class Importer:
    def __init__(self, engine: Engine, settings: ProfilesSettings, *, progress: bool = False, dry_run: bool = False):
        self.engine = engine
        self.settings = settings
        self.progress = progress
        self.dry_run = dry_run

    def run(self, binary: IO[bytes], *, encoding: Encoding = "auto", size: int | None = None) -> ImportReport:
        started = time.perf_counter()
        head = binary.read(65536)
        binary.seek(0)
        if not head.strip():
            raise ImportFileError("ファイルが空です", "The file is empty")
        chosen = detect_encoding(head) if encoding == "auto" else {"utf-8": "utf-8-sig", "cp932": "cp932"}[encoding]
        try:
            report = self._run(binary, chosen, size)
        except _DecodeFailure as failure:
            if encoding == "auto" and chosen != "cp932":
                # The first bytes looked like UTF-8 but the rest is not: try Shift_JIS (CP932) from the top.
                binary.seek(0)
                try:
                    report = self._run(binary, "cp932", size)
                except _DecodeFailure as second:
                    raise self._decode_error(second.line) from None
            else:
                raise self._decode_error(failure.line) from None
        report.seconds = time.perf_counter() - started
        # One nested key: names like "created" would collide with LogRecord's own attributes.
        log.info("expert import", extra={"import_report": {k: v for k, v in report.as_dict().items() if k != "errors"}})
        return report

    @staticmethod
    def _decode_error(line: int) -> ImportFileError:
        return ImportFileError(
            "文字コードが正しくありません。UTF-8 か Shift_JIS（CP932）で保存してください",
            "Wrong character encoding; save as UTF-8 or Shift_JIS (CP932)",
            line,
        )

    def _run(self, binary: IO[bytes], encoding: str, size: int | None) -> ImportReport:
        report = ImportReport(encoding=_encoding_name(encoding), dry_run=self.dry_run)
        buffered = io.BufferedReader(_Unclosable(binary), buffer_size=1 << 16)
        text = io.TextIOWrapper(buffered, encoding=encoding, errors="strict", newline="")
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=size, unit="B", unit_scale=True, desc="取り込み / import", leave=True)
        session = Session(self.engine, expire_on_commit=False)
        try:
            seen: dict[str, int] = {}  # key -> first line, to refuse a duplicate within the file
            batch: list[_Row] = []
            for line, row in self._rows(text, report):
                parsed = self._parse(line, row, report, seen)
                if parsed is not None:
                    batch.append(parsed)
                if len(batch) >= self.settings.import_chunk_rows:
                    self._write(session, batch, report)
                    batch = []
                    if bar is not None:
                        bar.n = binary.tell()
                        bar.set_postfix(rows=report.rows, rejected=report.rejected, refresh=True)
            self._write(session, batch, report)
            if self.dry_run:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            text.detach()
            if bar is not None:
                bar.n = bar.total or bar.n
                bar.set_postfix(rows=report.rows, rejected=report.rejected)
                bar.close()
        return report

    def _rows(self, text: io.TextIOWrapper, report: ImportReport) -> Iterator[tuple[int, dict[str, str]]]:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError("ファイルが空です", "The file is empty") from None
        except UnicodeDecodeError:
            raise _DecodeFailure(1) from None
        except csv.Error as error:
            raise ImportFileError(f"CSV として読み取れません（{error}）", f"Not a valid CSV ({error})", 1) from None
        columns = self._columns(header, report)
        previous_line = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise _DecodeFailure(previous_line + 1) from None
            except csv.Error as error:
                raise ImportFileError(
                    f"CSV として読み取れません（{error}）", f"Not a valid CSV ({error})", previous_line + 1
                ) from None
            line = previous_line + 1  # a quoted cell may span lines: report where the row starts
            previous_line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # Excel leaves blank rows at the end
            if len(cells) > len(columns):
                extra = [cell for cell in cells[len(columns):] if cell.strip()]
                if extra:
                    report.rows += 1
                    report.reject(RowError(line, "body", "", "列の数が見出しより多いです", "More cells than header columns"))
                    continue
            yield line, {key: cells[index] for index, key in enumerate(columns) if key and index < len(cells)}

    def _columns(self, header: list[str], report: ImportReport) -> list[str | None]:
        columns: list[str | None] = []
        for index, title in enumerate(header):
            title = title.lstrip("\ufeff")
            key = _HEADER_INDEX.get(_header_key(title))
            if key is None:
                if title.strip():
                    report.warnings.append(f"列「{title}」は取り込みません / Column {title!r} is ignored")
                columns.append(None)
                continue
            if key in columns:
                raise ImportFileError(f"列「{title}」が重複しています", f"Column {title!r} appears twice", 1)
            columns.append(None if key in EXPORT_ONLY else key)
        missing = [COLUMNS[key] for key in ("name",) if key not in columns]
        if not {"id", "registration_number", "external_id"} & set(columns):
            missing.append(f"{COLUMNS['registration_number']}（または {COLUMNS['external_id']}・{COLUMNS['id']}）")
        if missing:
            raise ImportFileError(
                f"必須の列がありません: {'、'.join(missing)}（文字コードが違う可能性もあります）",
                f"Required columns missing: {', '.join(missing)} (or the encoding is wrong)",
                1,
            )
        return columns

    def _parse(self, line: int, row: dict[str, str], report: ImportReport, seen: dict[str, int]) -> _Row | None:
        report.rows += 1
        row_id = _cell(row.get("id")) or None
        body, confirmed, cell_errors = row_to_body(row)
        key_hint = row_id or body.get("registration_number") or body.get("external_id")
        if cell_errors:
            for column, error in cell_errors[:1]:  # the first problem of a row is enough to fix it
                report.reject(RowError(line, column, COLUMNS.get(column, column), error.ja, error.en, key_hint))
            return None
        try:
            validated = ExpertCreate.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            detail = validation_error([first]).fields[0]
            column = _column_of(tuple(first.get("loc", ())))
            report.reject(
                RowError(line, detail["field"], COLUMNS.get(column, column), detail["message_ja"], detail["message_en"], key_hint)
            )
            return None
        # The row's key: its ID, else its registration number, else its external id.
        keys = (("id", row_id), ("registration_number", validated.registration_number), ("external_id", validated.external_id))
        key_field, key_value = next(((name, value) for name, value in keys if value), ("external_id", None))
        if key_value is None:
            report.reject(
                RowError(line, "external_id", COLUMNS["external_id"], "DX人材の行には外部IDが必要です",
                         "A DX talent row needs an external id", key_hint)
            )
            return None
        key = f"{key_field}:{key_value}"
        if key in seen:
            report.reject(
                RowError(line, key_field, COLUMNS[key_field], f"{seen[key]}行目と重複しています",
                         f"Duplicate of line {seen[key]}", key_hint)
            )
            return None
        seen[key] = line
        return _Row(line, validated, confirmed, row_id, key)

    def _write(self, session: Session, batch: list[_Row], report: ImportReport) -> None:
        if not batch:
            return
        existing = repository.experts_by_keys(
            session,
            ids=[row.row_id for row in batch if row.row_id],
            registration_numbers=[row.body.registration_number for row in batch if row.body.registration_number],
            external_ids=[row.body.external_id for row in batch if row.body.external_id],
        )
        owners = repository.experts_by_owners(session, [row.body.owner_user_id for row in batch if row.body.owner_user_id])
        index = _Index(existing + owners)
        writes = _Writes()
        now = utcnow()
        for row in batch:
            target, error = index.resolve(row)
            if error is not None:
                report.reject(error)
                continue
            self._upsert(session, row, target, report, now, index, writes)
        # New entries and all events go in as bulk INSERTs: building an ORM object per row would cost
        # more than everything else together. Changed entries are ORM objects already (few, usually).
        if writes.new_rows:
            session.connection().execute(Expert.__table__.insert(), writes.new_rows)  # type: ignore[attr-defined]
        add_events(session, OutboxRecord, writes.events)
        session.flush()
        session.expunge_all()  # the batch is written; keep memory flat

    def _upsert(self, session: Session, row: _Row, expert: Any, report: ImportReport, now: datetime,
                index: _Index, writes: _Writes) -> None:
        body = row.body
        document = profile_document(body)
        digest = content_hash(document)
        owner = body.owner_user_id or (expert.owner_user_id if expert is not None else None)
        if expert is None:
            expert = SimpleNamespace(**_new_expert_values(now), last_confirmed_at=row.confirmed or now)
            writes.new_rows.append(vars(expert))  # the namespace's own dict: later changes below show in it
            report.created += 1
        else:
            stored = aware(expert.last_confirmed_at)
            newer_confirmation = row.confirmed is not None and (stored is None or row.confirmed > stored)
            if digest == expert.content_hash and owner == expert.owner_user_id and not newer_confirmation:
                report.unchanged += 1
                return
            if newer_confirmation:
                expert.last_confirmed_at = row.confirmed
            expert.version += 1
            expert.updated_at = now
            session.add(expert)
            report.updated += 1
        apply_profile(expert, document, digest)
        expert.owner_user_id = owner
        change = status_change(expert, evaluate(expert, now.date(), self.settings))
        apply_status(expert, change, now)
        writes.events.extend(expert_envelopes(expert, change))
        index.add(expert)  # later rows of the batch must see this entry


@dataclass
class _Writes:
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventEnvelope] = field(default_factory=list)


def _new_expert_values(now: datetime) -> dict[str, Any]:
    """Column values of a new entry before its profile is applied (the model's defaults)."""
    return {
        "id": new_id(), "owner_user_id": None, "active": True, "status_reason": None, "status_changed_at": now,
        "reminders": {}, "version": 1, "created_at": now, "updated_at": now,
    }


class _Index:
    """The entries a batch refers to, by each of their keys."""

    def __init__(self, experts: list[Any]) -> None:
        self.by_id: dict[str, Any] = {}
        self.by_key: dict[str, dict[str, Any]] = {"registration_number": {}, "external_id": {}, "owner_user_id": {}}
        for expert in experts:
            self.add(expert)

    def add(self, expert: Any) -> None:
        self.by_id[expert.id] = expert
        for name, entries in self.by_key.items():
            value = getattr(expert, name)
            if value:
                entries[value] = expert

    def resolve(self, row: _Row) -> tuple[Any, RowError | None]:
        """The stored entry a row updates (None: a new one), or why the row cannot be applied."""
        target = None
        if row.row_id:
            target = self.by_id.get(row.row_id)
            if target is None:
                return None, RowError(row.line, "id", COLUMNS["id"], f"ID {row.row_id} の登録がありません",
                                      f"No entry with id {row.row_id}", row.row_id)
        for name in ("registration_number", "external_id", "owner_user_id"):
            value = getattr(row.body, name)
            other = self.by_key[name].get(value) if value else None
            if other is None:
                continue
            if name != "owner_user_id" and target is None:
                target = other
            elif other is not target:
                return None, RowError(row.line, name, COLUMNS[name], f"{value} は別の登録（ID {other.id}）で使われています",
                                      f"{value} belongs to another entry (id {other.id})", row.key)
        return target, None


class _Unclosable(io.RawIOBase):
    """Lets TextIOWrapper read an upload or file without closing it when the wrapper goes away."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def import_experts(engine: Engine, settings: ProfilesSettings, binary: IO[bytes], *, encoding: Encoding = "auto",
                   dry_run: bool = False, progress: bool = False, size: int | None = None) -> ImportReport:
    return Importer(engine, settings, progress=progress, dry_run=dry_run).run(binary, encoding=encoding, size=size)


def import_experts_file(path: str | Path, settings: ProfilesSettings | None = None, progress: bool = True, *,
                        encoding: Encoding = "auto", dry_run: bool = False) -> dict[str, Any]:
    """For the CLI (``tsunagu experts import FILE.csv``): migrate if needed, import, return the report.
    Raises ImportFileError (an ApiError with Japanese and English messages) when the file as a whole is refused."""
    settings = settings or ProfilesSettings()
    engine = repository.prepared_engine(settings)
    path = Path(path)
    try:
        with path.open("rb") as binary:
            return import_experts(engine, settings, binary, encoding=encoding, dry_run=dry_run, progress=progress,
                                  size=path.stat().st_size).as_dict()
    finally:
        engine.dispose()


# --- export ------------------------------------------------------------------------------------

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


def export_row(expert: Expert) -> list[str]:
    confirmed = aware(expert.last_confirmed_at)
    return body_cells(
        profile_of(expert)
        | {
            "id": expert.id,
            "owner_user_id": expert.owner_user_id,
            "last_confirmed_at": confirmed.isoformat() if confirmed else None,
            "active": expert.active,
            "status_reason": expert.status_reason,
        }
    )


def _geta(error: UnicodeEncodeError) -> tuple[str, int]:
    # Characters Shift_JIS cannot hold become 〓 (geta), the customary JIS substitute.
    return "〓" * (error.end - error.start), error.end


codecs.register_error("tsunagu_geta", _geta)


def export_csv_chunks(engine: Engine, encoding: Literal["utf-8", "cp932"] = "utf-8", rows_per_chunk: int = 500) -> Iterator[bytes]:
    """The whole list as CSV bytes, chunk by chunk (UTF-8 with BOM so that Excel reads it, or CP932)."""
    codec = "utf-8-sig" if encoding == "utf-8" else "cp932"
    encoder = codecs.getincrementalencoder(codec)("tsunagu_geta")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    with Session(engine) as session:
        for index, expert in enumerate(repository.all_experts(session), start=1):
            writer.writerow(export_row(expert))
            if index % rows_per_chunk == 0:
                yield encoder.encode(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
    yield encoder.encode(buffer.getvalue(), final=True)


def export_experts_file(path: str | Path, settings: ProfilesSettings | None = None, *,
                        encoding: Literal["utf-8", "cp932"] = "utf-8") -> int:
    """For the CLI (``tsunagu experts export FILE.csv``): write the list, return the number of rows."""
    settings = settings or ProfilesSettings()
    engine = repository.prepared_engine(settings)
    try:
        with Path(path).open("wb") as out:
            for chunk in export_csv_chunks(engine, encoding):
                out.write(chunk)
        with Session(engine) as session:
            return repository.count_experts(session)
    finally:
        engine.dispose()

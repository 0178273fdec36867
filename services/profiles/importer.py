"""The CSV import of the active list (the format itself: csv_format.py).

The import streams: the file is decoded and parsed row by row and written in batches, so memory does not
grow with the file. Each row is validated by the same model as the JSON API (schemas.ExpertCreate).
A bad row is reported (line, field, reason in Japanese and English) and not written; good rows are
upserted, keyed by ID, else 登録番号, else 外部ID. A row identical to what is stored changes nothing (no
new version, no event), so importing the same file twice changes nothing the second time.

The whole import is one transaction, in the caller's session (the caller commits; a dry run is not
committed): a file-level problem (wrong encoding, missing columns, a broken CSV) anywhere in the file
rolls everything back, so nothing is half-written. See docs/profiles.md for the header mapping and the
cell formats.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from pydantic import ValidationError
from sqlmodel import Session
from tqdm import tqdm

from services.profiles import repository
from services.profiles.csv_format import (
    COLUMNS,
    EXPORT_ONLY,
    HEADER_INDEX,
    Encoding,
    ImportFileError,
    cell,
    column_of,
    detect_encoding,
    encoding_name,
    header_key,
    row_to_body,
)
from services.profiles.events import VERIFIED, expert_envelopes, verification_envelope
from services.profiles.freshness import apply_status, evaluate, status_change
from services.profiles.models import OutboxRecord, aware, new_id
from services.profiles.profile import apply_profile, content_hash, profile_document
from services.profiles.schemas import ExpertCreate
from services.profiles.settings import ProfilesSettings
from tsunagu.db import utcnow
from tsunagu.errors import validation_error
from tsunagu.events import EventEnvelope
from tsunagu.outbox import add_events

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 1000


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
    """One import run into the caller's session. A dry run, and a file refused as a whole, leave the session
    rolled back; otherwise the caller commits."""

    def __init__(self, session: Session, settings: ProfilesSettings, *, progress: bool = False, dry_run: bool = False):
        self.session = session
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
                self.session.rollback()  # whatever the first attempt wrote
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
        report = ImportReport(encoding=encoding_name(encoding), dry_run=self.dry_run)
        buffered = io.BufferedReader(_Unclosable(binary), buffer_size=1 << 16)
        text = io.TextIOWrapper(buffered, encoding=encoding, errors="strict", newline="")
        bar = None
        if self.progress:
            bar = tqdm(total=size, unit="B", unit_scale=True, desc="取り込み / import", leave=True)
        session = self.session
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
        except BaseException:
            session.rollback()
            raise
        finally:
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
                extra = [cell for cell in cells[len(columns) :] if cell.strip()]
                if extra:
                    report.rows += 1
                    report.reject(
                        RowError(line, "body", "", "列の数が見出しより多いです", "More cells than header columns")
                    )
                    continue
            yield line, {key: cells[index] for index, key in enumerate(columns) if key and index < len(cells)}

    def _columns(self, header: list[str], report: ImportReport) -> list[str | None]:
        columns: list[str | None] = []
        for raw_title in header:
            title = raw_title.lstrip("\ufeff")
            key = HEADER_INDEX.get(header_key(title))
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
        row_id = cell(row.get("id")) or None
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
            column = column_of(tuple(first.get("loc", ())))
            report.reject(
                RowError(
                    line,
                    detail["field"],
                    COLUMNS.get(column, column),
                    detail["message_ja"],
                    detail["message_en"],
                    key_hint,
                )
            )
            return None
        # The row's key: its ID, else its registration number, else its external id.
        keys = (
            ("id", row_id),
            ("registration_number", validated.registration_number),
            ("external_id", validated.external_id),
        )
        key_field, key_value = next(((name, value) for name, value in keys if value), ("external_id", None))
        if key_value is None:
            report.reject(
                RowError(
                    line,
                    "external_id",
                    COLUMNS["external_id"],
                    "DX人材の行には外部IDが必要です",
                    "A DX talent row needs an external id",
                    key_hint,
                )
            )
            return None
        key = f"{key_field}:{key_value}"
        if key in seen:
            report.reject(
                RowError(
                    line,
                    key_field,
                    COLUMNS[key_field],
                    f"{seen[key]}行目と重複しています",
                    f"Duplicate of line {seen[key]}",
                    key_hint,
                )
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
        owners = repository.experts_by_owners(
            session, [row.body.owner_user_id for row in batch if row.body.owner_user_id]
        )
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
        # For the same reason the import does not use tsunagu.outbox.record_change (one change at a time):
        # it bumps versions itself and adds the batch's events at once (measured by bench/bench_import.py).
        repository.insert_experts(session, writes.new_rows)
        add_events(session, OutboxRecord, writes.events)
        session.flush()
        session.expunge_all()  # the batch is written; keep memory flat

    def _upsert(
        self,
        session: Session,
        row: _Row,
        expert: Any,
        report: ImportReport,
        now: datetime,
        index: _Index,
        writes: _Writes,
    ) -> None:
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
            # The operator's file naming the account of a pending entry verifies that claim (an import is
            # verified by definition); a row without the account only updates the data, the claim stays open.
            verifies = expert.verification != VERIFIED and body.owner_user_id is not None
            if (
                digest == expert.content_hash
                and owner == expert.owner_user_id
                and not newer_confirmation
                and not verifies
            ):
                report.unchanged += 1
                return
            if verifies:
                expert.verification = VERIFIED
                expert.verification_reason = None
                expert.verification_decided_at = now
                expert.verification_decided_by = "import"
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
        if expert.verification_decided_by == "import" and expert.verification_decided_at == now and owner:
            writes.events.append(verification_envelope(expert, user_id=owner, verified=True))
        index.add(expert)  # later rows of the batch must see this entry


@dataclass
class _Writes:
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventEnvelope] = field(default_factory=list)


def _new_expert_values(now: datetime) -> dict[str, Any]:
    """Column values of a new entry before its profile is applied (the model's defaults)."""
    return {
        "id": new_id(),
        "owner_user_id": None,
        "verification": VERIFIED,  # the operator's own file: verified by definition
        "verification_reason": None,
        "verification_decided_at": None,
        "verification_decided_by": None,
        "active": True,
        "status_reason": None,
        "status_changed_at": now,
        "reminders": {},
        "conflicted_organization_ids": [],
        "employer_organization_id": None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
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
                return None, RowError(
                    row.line,
                    "id",
                    COLUMNS["id"],
                    f"ID {row.row_id} の登録がありません",
                    f"No entry with id {row.row_id}",
                    row.row_id,
                )
        for name in ("registration_number", "external_id", "owner_user_id"):
            value = getattr(row.body, name)
            other = self.by_key[name].get(value) if value else None
            if other is None:
                continue
            if name != "owner_user_id" and target is None:
                target = other
            elif other is not target:
                return None, RowError(
                    row.line,
                    name,
                    COLUMNS[name],
                    f"{value} は別の登録（ID {other.id}）で使われています",
                    f"{value} belongs to another entry (id {other.id})",
                    row.key,
                )
        return target, None


class _Unclosable(io.RawIOBase):
    """Lets TextIOWrapper read an upload or file without closing it when the wrapper goes away."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def import_experts(
    session: Session,
    settings: ProfilesSettings,
    binary: IO[bytes],
    *,
    encoding: Encoding = "auto",
    dry_run: bool = False,
    progress: bool = False,
    size: int | None = None,
) -> ImportReport:
    """Import a CSV into the session (the caller commits; a dry run is rolled back here)."""
    return Importer(session, settings, progress=progress, dry_run=dry_run).run(binary, encoding=encoding, size=size)


def import_experts_file(
    path: str | Path,
    settings: ProfilesSettings | None = None,
    progress: bool = True,
    *,
    encoding: Encoding = "auto",
    dry_run: bool = False,
) -> dict[str, Any]:
    """For the CLI (``tsunagu experts import FILE.csv``): migrate if needed, import, return the report.
    Raises ImportFileError (an ApiError with Japanese and English messages) when the file as a whole is refused."""
    settings = settings or ProfilesSettings()
    engine = repository.prepared_engine(settings)
    path = Path(path)
    try:
        with path.open("rb") as binary, Session(engine, expire_on_commit=False) as session:
            report = import_experts(
                session,
                settings,
                binary,
                encoding=encoding,
                dry_run=dry_run,
                progress=progress,
                size=path.stat().st_size,
            )
            session.commit()
            return report.as_dict()
    finally:
        engine.dispose()

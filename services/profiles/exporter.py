"""The CSV export of the active list, in the import format (csv_format.py): UTF-8 with BOM so that Excel
reads it, or CP932 for older Excel (characters Shift_JIS cannot hold become 〓). Streamed chunk by chunk:
the export never holds the whole list. Admins only (it has every field)."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from sqlmodel import Session

from services.profiles import repository
from services.profiles.csv_format import EXPORT_HEADER, GETA_ERRORS, body_cells
from services.profiles.models import Expert, aware
from services.profiles.profile import profile_of
from services.profiles.settings import ProfilesSettings

ExportEncoding = Literal["utf-8", "cp932"]


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


def export_csv_chunks(
    session: Session, encoding: ExportEncoding = "utf-8", rows_per_chunk: int = 500
) -> Iterator[bytes]:
    """The whole list as CSV bytes, chunk by chunk (UTF-8 with BOM so that Excel reads it, or CP932)."""
    codec = "utf-8-sig" if encoding == "utf-8" else "cp932"
    encoder = codecs.getincrementalencoder(codec)(GETA_ERRORS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_HEADER)
    for index, expert in enumerate(repository.all_experts(session), start=1):
        writer.writerow(export_row(expert))
        if index % rows_per_chunk == 0:
            yield encoder.encode(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    yield encoder.encode(buffer.getvalue(), final=True)


def export_experts_file(
    path: str | Path, settings: ProfilesSettings | None = None, *, encoding: ExportEncoding = "utf-8"
) -> int:
    """For the CLI (``tsunagu experts export FILE.csv``): write the list, return the number of rows."""
    settings = settings or ProfilesSettings()
    engine = repository.prepared_engine(settings)
    try:
        with Path(path).open("wb") as out, Session(engine) as session:
            for chunk in export_csv_chunks(session, encoding):
                out.write(chunk)
            return repository.count_experts(session)
    finally:
        engine.dispose()

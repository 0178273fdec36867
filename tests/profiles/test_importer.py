"""The CSV import: encodings, row-level reports, idempotent re-import, nothing half-written."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.profiles.csv_format import ImportFileError
from services.profiles.demo import generate_experts, write_import_csv
from services.profiles.importer import import_experts_file
from services.profiles.models import Expert
from services.profiles.settings import ProfilesSettings
from tests.profiles.conftest import Auth, count, csv_bytes, expert_body, outbox, run, some_bodies
from tsunagu.auth import Role
from tsunagu.events import Subjects


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp932"])
def test_utf8_and_shift_jis_files_import(engine: Engine, settings: ProfilesSettings, encoding: str) -> None:
    report = run(engine, settings, csv_bytes(some_bodies(), encoding))
    assert report["encoding"] == ("cp932" if encoding == "cp932" else "utf-8")
    assert (report["rows"], report["created"], report["rejected"]) == (4, 4, 0), report
    assert count(engine) == 4
    assert len(outbox(engine, Subjects.EXPERT_UPSERTED)) == 4 and len(outbox(engine, Subjects.EXPERT_PUBLISHED)) == 4
    with Session(engine) as session:
        stored = session.exec(select(Expert).where(Expert.registration_number == "300001")).one()
        assert stored.name == "取込 太郎1" and stored.skills == ["aws"] and stored.prefectures == ["13"]
        assert stored.contact_phone == "+81-90-0000-0000"  # exported as '+81..., read back without the quote
        assert stored.renewal_deadline is not None and stored.active is True


def test_english_headers_and_friendly_cells(engine: Engine, settings: ProfilesSettings) -> None:
    text = (
        "registration_number,name,ふりがな,registration_date,prefectures,onsite,remote,strengths,skills,fee_min_yen,services\r\n"
        '第０１２３４５号,鈴木 一郎,すずき いちろう,2024/4/1,東京都；神奈川,可,×,ランサムウェア対策:3;education:1,ＡＷＳ;Linux,"￥10,000",マネジメント指導\r\n'
    )
    report = run(engine, settings, text.encode("cp932"))
    assert report["created"] == 1, report
    with Session(engine) as session:
        stored = session.exec(select(Expert)).one()
    assert stored.registration_number == "012345" and stored.prefectures == ["13", "14"]
    assert stored.onsite is True and stored.remote is False and stored.fee_min_yen == 10000
    assert stored.strengths == [{"topic": "ransomware", "depth": 3}, {"topic": "education", "depth": 1}]
    assert stored.skills == ["aws", "linux"] and stored.services == ["management_guidance"]


def test_bad_rows_are_reported_with_line_field_and_reason_and_not_written(
    engine: Engine, settings: ProfilesSettings
) -> None:
    good = expert_body(registration_number="400001", bio="一行目\n二行目")  # a quoted cell spanning two lines
    rows = [
        good,
        expert_body(registration_number="12AB"),
        expert_body(registration_number="400003", prefectures=["火星県"]),
        expert_body(registration_number="400004", strengths=[{"topic": "no_such_topic", "depth": 2}]),
        expert_body(registration_number="400005", registration_date="2024-04-01", renewal_deadline="2023-01-01"),
        expert_body(registration_number="400006", bio="長" * 2001),
        expert_body(registration_number="400001", name="重複 次郎"),
        expert_body(registration_number="400008"),
    ]
    data = csv_bytes(rows)
    data = data.replace(b",1,1,ransomware:3,aws,", ",1,たぶん,ransomware:3,aws,".encode(), 0)  # unchanged marker
    report = run(engine, settings, data)
    assert (report["rows"], report["created"], report["rejected"]) == (8, 2, 6), report
    by_line = {error["line"]: error for error in report["errors"]}
    # Line 1 is the header; the good row's bio spans lines 2-3, so the second row starts on line 4.
    assert by_line[4]["field"] == "registration_number" and by_line[4]["column"] == "登録番号"
    assert by_line[5]["field"] == "prefectures.0" and "火星県" in by_line[5]["message_ja"]
    assert by_line[6]["field"] == "strengths.0.topic" and by_line[6]["message_en"] == "Unknown topic: no_such_topic"
    assert by_line[7]["field"] == "renewal_deadline" and by_line[7]["column"] == "更新期限"
    assert by_line[8]["field"] == "bio" and "2000" in by_line[8]["message_ja"]
    assert by_line[9]["field"] == "registration_number" and "2行目" in by_line[9]["message_ja"]
    assert all(error["message_ja"] and error["message_en"] for error in report["errors"])
    assert count(engine) == 2
    assert {event.subject_id for event in outbox(engine)} == {
        expert.id for expert in Session(engine).exec(select(Expert)).all()
    }


def test_bad_cells_name_the_column(engine: Engine, settings: ProfilesSettings) -> None:
    header = "登録番号,氏名,登録年月日,対応都道府県,訪問対応,同時対応可能数,得意分野\r\n"
    lines = [
        "500001,田中 一,2024-04-01,13,たぶん,1,ransomware:1",
        "500002,田中 二,2024-13-45,13,1,1,ransomware:1",
        "500003,田中 三,2024-04-01,13,1,三人,ransomware:1",
        "500004,田中 四,2024-04-01,13,1,1,ransomware",
    ]
    report = run(engine, settings, (header + "\r\n".join(lines) + "\r\n").encode())
    assert report["rejected"] == 4 and count(engine) == 0
    assert [(error["line"], error["field"]) for error in report["errors"]] == [
        (2, "onsite"),
        (3, "registration_date"),
        (4, "capacity"),
        (5, "strengths"),
    ]


def test_reimporting_the_same_file_changes_nothing(engine: Engine, settings: ProfilesSettings) -> None:
    data = csv_bytes(some_bodies(5))
    first = run(engine, settings, data)
    assert first["created"] == 6
    written = len(outbox(engine))
    with Session(engine) as session:
        versions = {expert.id: (expert.version, expert.updated_at) for expert in session.exec(select(Expert)).all()}
    second = run(engine, settings, data)
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 6), second
    assert len(outbox(engine)) == written
    with Session(engine) as session:
        assert {
            expert.id: (expert.version, expert.updated_at) for expert in session.exec(select(Expert)).all()
        } == versions

    changed = some_bodies(5)
    changed[2]["skills"] = ["Azure"]
    third = run(engine, settings, csv_bytes(changed))
    assert (third["created"], third["updated"], third["unchanged"]) == (0, 1, 5), third
    latest = outbox(engine, Subjects.EXPERT_UPSERTED)[-1]
    assert latest.data["skills"] == ["azure"] and latest.entity_version == 2


def test_wrong_encodings_are_refused_and_nothing_is_written(engine: Engine, settings: ProfilesSettings) -> None:
    text = csv_bytes(some_bodies(), "utf-8").decode("utf-8")
    with pytest.raises(ImportFileError) as utf16:
        run(engine, settings, text.encode("utf-16"))
    assert "UTF-16" in utf16.value.message_ja and utf16.value.fields[0]["field"] == "file"
    with pytest.raises(ImportFileError) as euc:
        run(engine, settings, text.encode("euc_jp"))
    assert "文字コード" in euc.value.message_ja and "encoding" in euc.value.message_en
    with pytest.raises(ImportFileError) as declared:
        run(engine, settings, text.encode("cp932"), encoding="utf-8")
    assert declared.value.status_code == 422 and "line" in declared.value.message_en
    with pytest.raises(ImportFileError):
        run(engine, settings, b"\x89PNG\r\n\x1a\n\x00\x00\x00binary")
    with pytest.raises(ImportFileError):
        run(engine, settings, b"")
    assert count(engine) == 0 and outbox(engine) == []


def test_a_file_broken_late_writes_nothing(engine: Engine, settings: ProfilesSettings) -> None:
    small_batches = settings.model_copy(update={"import_chunk_rows": 10})
    bodies = list(generate_experts(200, seed=7))
    # Row 50 is Shift_JIS inside a UTF-8 file: earlier batches were already sent to the database.
    head = csv_bytes(bodies[:49], "utf-8")
    tail = csv_bytes(bodies[49:], "cp932").split(b"\r\n", 1)[1]
    with pytest.raises(ImportFileError):
        run(engine, small_batches, head + tail, encoding="utf-8")
    # A cell beyond what any CSV reader accepts, far beyond the bytes the encoding is judged on.
    giant = b'600001,"' + b"x" * 200_000 + b'"\r\n'
    broken = csv_bytes(bodies[:150], "utf-8") + giant + csv_bytes(bodies[150:], "utf-8").split(b"\r\n", 1)[1]
    with pytest.raises(ImportFileError) as caught:
        run(engine, small_batches, broken)
    assert "152行目" in caught.value.message_ja and "line 152" in caught.value.message_en
    assert count(engine) == 0 and outbox(engine) == []


def test_control_characters_are_a_bad_row(engine: Engine, settings: ProfilesSettings) -> None:
    text = (
        "登録番号,氏名,登録年月日,対応都道府県\r\n600001,\x07山田,2024-04-01,13\r\n600002,山田 花子,2024-04-01,13\r\n"
    )
    report = run(engine, settings, text.encode())
    assert report["created"] == 1 and report["errors"][0]["field"] == "name" and report["errors"][0]["line"] == 2


def test_missing_or_duplicate_columns(engine: Engine, settings: ProfilesSettings) -> None:
    with pytest.raises(ImportFileError) as missing:
        run(engine, settings, "氏名,所属\r\n山田,テスト\r\n".encode())
    assert "登録番号" in missing.value.message_ja
    with pytest.raises(ImportFileError) as twice:
        run(engine, settings, "登録番号,氏名,registration_number\r\n".encode())
    assert "重複" in twice.value.message_ja
    report = run(
        engine,
        settings,
        ("登録番号,氏名,登録年月日,対応都道府県,好きな食べ物\r\n700001,山田 花子,2024-04-01,13,寿司\r\n").encode(),
    )
    assert report["created"] == 1 and "好きな食べ物" in report["warnings"][0]


def test_admin_upload_through_the_api(client: TestClient, auth: Auth, engine: Engine, tmp_path: Path) -> None:
    path = write_import_csv(tmp_path / "list.csv", 3000, encoding="cp932", seed=11)
    assert path.stat().st_size > 1_000_000  # larger than ordinary request bodies may be
    admin = auth(Role.ADMIN)
    with path.open("rb") as upload:
        dry = client.post(
            "/admin/experts/import",
            files={"file": ("list.csv", upload, "text/csv")},
            data={"dry_run": "true"},
            headers=admin,
        )
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and dry.json()["created"] == 3000 and count(engine) == 0
    with path.open("rb") as upload:
        response = client.post("/admin/experts/import", files={"file": ("list.csv", upload, "text/csv")}, headers=admin)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["encoding"] == "cp932" and report["created"] == 3000 and report["rejected"] == 0
    assert count(engine) == 3000
    # Some imported entries are out of order on purpose (expired, lapsed, stale) and were deactivated.
    inactive = client.get("/experts", params={"active": "false", "limit": 1}, headers=admin).json()["total"]
    assert 0 < inactive < 1000
    assert len(outbox(engine, Subjects.EXPERT_DEACTIVATED)) == inactive

    with path.open("rb") as upload:
        assert (
            client.post(
                "/admin/experts/import", files={"file": ("list.csv", upload, "text/csv")}, headers=auth(Role.BROKER)
            ).status_code
            == 403
        )
    refused = client.post(
        "/admin/experts/import", files={"file": ("x.csv", "a,b\r\n".encode("utf-16"), "text/csv")}, headers=admin
    )
    assert refused.status_code == 422 and refused.json()["error"]["fields"][0]["field"] == "file"
    assert client.post("/admin/experts/import", headers=admin).status_code == 422  # no file at all


def test_the_cli_function_with_progress_bar(
    settings: ProfilesSettings, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the services log at INFO: the summary line must not break the import
    path = write_import_csv(tmp_path / "list.csv", 50, seed=3)
    report = import_experts_file(path, settings, progress=True)
    assert report["created"] == 50 and report["rejected"] == 0
    assert "import" in capsys.readouterr().err
    assert import_experts_file(path, settings, progress=False)["unchanged"] == 50
    assert any(getattr(record, "import_report", {}).get("created") == 50 for record in caplog.records)

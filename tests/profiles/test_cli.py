"""The `tsunagu experts` commands on a real SQLite database (what an admin runs from a terminal)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from launcher.cli import app
from services.profiles.demo import write_import_csv

runner = CliRunner()


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TSUNAGU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def _report(output: str) -> dict:
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


def test_import_twice_changes_nothing_the_second_time_and_export_round_trips(data_dir) -> None:
    csv_path = write_import_csv(data_dir / "list.csv", 150, encoding="cp932", seed=3)
    first = runner.invoke(app, ["experts", "import", str(csv_path)])
    assert first.exit_code == 0, first.output
    assert _report(first.output)["created"] == 150
    second = runner.invoke(app, ["experts", "import", str(csv_path)])
    assert (_report(second.output)["created"], _report(second.output)["unchanged"]) == (0, 150)

    exported = data_dir / "out.csv"
    result = runner.invoke(app, ["experts", "export", str(exported), "--encoding", "cp932"])
    assert result.exit_code == 0 and "150件" in result.output
    again = runner.invoke(app, ["experts", "import", str(exported)])
    assert _report(again.output)["unchanged"] == 150

    freshness = runner.invoke(app, ["experts", "freshness"])
    assert freshness.exit_code == 0 and _report(freshness.output)["checked"] == 150


def test_a_file_in_the_wrong_encoding_is_refused_whole(data_dir) -> None:
    bad = data_dir / "bad.csv"
    bad.write_bytes("登録番号,氏名\n".encode("cp932") + b"\xff\xfe\xfd\n")
    result = runner.invoke(app, ["experts", "import", str(bad), "--encoding", "utf-8"])
    assert result.exit_code == 2
    assert "文字コード" in result.output

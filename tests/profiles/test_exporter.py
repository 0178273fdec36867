"""The CSV export: the import format (importable again unchanged), UTF-8 or CP932, no live formulas."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from services.profiles.csv_format import EXPORT_HEADER
from services.profiles.settings import ProfilesSettings
from tests.factories import dx_body
from tests.profiles.conftest import Auth, create_listed, expert_body, outbox, run
from tsunagu.auth import Role


def test_export_is_the_import_format(
    client: TestClient, auth: Auth, engine: Engine, settings: ProfilesSettings
) -> None:
    admin = auth(Role.ADMIN)
    create_listed(
        client,
        auth,
        expert_body(
            bio='=HYPERLINK("http://evil.example")',
            contact_phone="+81-3-0000-0000",
            visibility={"bio": "private"},
            training={"online": ["2024-06-01"], "practical": []},
        ),
        "owner",
    )
    client.post("/experts", json=dx_body(), headers=admin)
    written = len(outbox(engine))
    for encoding, codec in (("utf-8", "utf-8-sig"), ("cp932", "cp932")):
        exported = client.get("/admin/experts/export", params={"encoding": encoding}, headers=admin)
        assert exported.status_code == 200
        rows = list(csv.reader(io.StringIO(exported.content.decode(codec))))
        assert rows[0] == EXPORT_HEADER and len(rows) == 3
        assert any(cell.startswith("'=HYPERLINK") for cell in rows[1] + rows[2])  # no live formula in Excel
        report = run(engine, settings, exported.content)
        assert (report["unchanged"], report["created"], report["updated"], report["rejected"]) == (2, 0, 0, 0), report
    assert len(outbox(engine)) == written
    view = client.get(
        f"/experts/{client.get('/experts/me', headers=auth(Role.EXPERT, 'owner')).json()['id']}", headers=admin
    ).json()
    assert view["bio"].startswith("=HYPERLINK") and view["visibility"]["bio"] == "private"

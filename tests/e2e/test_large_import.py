"""A national-scale CSV passes through the gateway (streamed, not capped at the 1 MB JSON limit)."""

from __future__ import annotations

import pytest

from services.profiles.demo import write_import_csv
from tests.conftest import Api

pytestmark = pytest.mark.e2e


def test_a_multi_megabyte_cp932_import_through_the_gateway(api: Api, admin: dict[str, str], tmp_path) -> None:
    path = write_import_csv(tmp_path / "名簿.csv", 3000, encoding="cp932", seed=424242)
    data = path.read_bytes()
    assert len(data) > 1_500_000  # well over the 1 MB limit of ordinary requests
    response = api.http.post(
        "/api/v1/admin/experts/import", headers=admin, files={"file": ("名簿.csv", data, "text/csv")}, timeout=120
    )
    assert response.status_code == 200, response.text[:500]
    report = response.json()
    assert report["encoding"] == "cp932"
    assert report["rows"] == 3000 and report["rejected"] == 0
    assert report["created"] + report["updated"] == 3000
    # Ordinary endpoints keep the small limit.
    too_big = api.http.post(
        "/api/v1/requests",
        headers={**admin, "content-type": "application/json"},
        content=b"[" + b" " * 1_100_000 + b"]",
    )
    assert too_big.status_code == 413

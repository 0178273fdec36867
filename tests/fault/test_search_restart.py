"""The search service killed and started again during a bulk import (issue 13, faults).

An admin imports 3,000 experts of the active list (a CP932 CSV, through the gateway, as the chambers do);
profiles writes one ``profiles.expert.published`` event per expert, and the search service's ``search-index``
consumer indexes them in batches. Once it has indexed some, search is killed with SIGKILL (no clean-up: an
index write or a database commit may be cut in half) and started again a moment later, while the events go on
arriving. The index must converge alone (every imported expert found, the consumer idle), and the real
``tsunagu search reindex --check`` command, run as a subprocess against the running system, must agree that
every index matches its source. How long convergence took after the restart is printed.
"""

from __future__ import annotations

import json
import threading

import httpx
from sqlalchemy import func
from sqlmodel import Session, select

from launcher.runner import System
from services.profiles.demo import write_import_csv
from services.search.models import IndexedExpert
from tests.conftest import Api, wait_until
from tests.e2e.test_search_reindex import _admin_email, _reindex
from tests.fault.conftest import Stopwatch, consumer_idle, kill9, outbox_rows, pending_outbox, restart_service
from tsunagu.db import make_engine
from tsunagu.events import Subjects

EXPERTS = 3000
PUBLISHED = Subjects.EXPERT_PUBLISHED


def indexed_experts(system: System) -> int:
    """How many experts the search service has recorded as indexed (its own database)."""
    engine = make_engine(system.database_url("search"))
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(IndexedExpert)).one()
    finally:
        engine.dispose()


def searchable_experts(api: Api) -> int:
    response = api.http.get("/api/v1/search/experts", params={"limit": 1})
    assert response.status_code == 200, response.text
    return response.json()["total"]


def test_search_killed_during_a_bulk_import_converges_and_reindex_check_agrees(
    private_system: System, private_api: Api, tmp_path
) -> None:
    system, api = private_system, private_api
    admin = api.account("admin")
    data = write_import_csv(tmp_path / "名簿.csv", EXPERTS, encoding="cp932", seed=1313).read_bytes()
    reports: list[httpx.Response] = []

    def import_list() -> None:
        with httpx.Client(base_url=system.url("gateway"), timeout=300) as client:
            reports.append(
                client.post(
                    "/api/v1/admin/experts/import", headers=admin, files={"file": ("名簿.csv", data, "text/csv")}
                )
            )

    importer = threading.Thread(target=import_list, name="bulk-import")
    clock = Stopwatch()
    importer.start()
    try:
        # Kill search once it is part-way through the import's events.
        wait_until(
            lambda: indexed_experts(system) >= EXPERTS // 10, timeout=180, interval=0.05, message="search indexing"
        )
        print(f"\nsearch began indexing {clock.seconds()} s after the import began")
        killed_with = kill9(system, "search")
        indexed_when_killed = indexed_experts(system)
        assert killed_with == -9
        assert indexed_when_killed < EXPERTS  # killed part-way, not after the end
        # Search is down: public search answers an error from the gateway (no process behind it), not a hang.
        down = api.http.get("/api/v1/search/experts", params={"q": "東京"})
        assert down.status_code in (502, 503), down.text
        restart_service(system, "search")
        restarted = Stopwatch()
    finally:
        importer.join(timeout=300)
    print(f"import answered {clock.seconds()} s after it began")
    assert reports and reports[0].status_code == 200, reports and reports[0].text[:500]
    report = reports[0].json()
    assert report["rows"] == EXPERTS and report["rejected"] == 0
    assert report["created"] == EXPERTS

    progress: dict[str, int | bool] = {}

    def converged() -> bool:
        # Every expert profiles published (its outbox, all sent) is recorded as indexed, and nothing waits.
        progress["outbox_pending"] = pending_outbox(system, "profiles")
        published = {json.loads(row.payload)["subject_id"] for row in outbox_rows(system, "profiles", PUBLISHED)}
        progress["published"] = len(published)
        progress["indexed"] = indexed_experts(system)
        progress["idle"] = consumer_idle(system, "PROFILES", "search-index")
        return (
            progress["outbox_pending"] == 0
            and progress["published"] >= EXPERTS
            and progress["indexed"] == progress["published"]
            and bool(progress["idle"])
        )

    try:
        wait_until(converged, timeout=150, interval=1.0, message="the index to hold every published expert")
    finally:
        print(f"\nconvergence: {progress} ({restarted.seconds()} s after the restart)")
    assert searchable_experts(api) > 0
    print(
        f"\nsearch killed after indexing {indexed_when_killed} of {EXPERTS}; "
        f"converged {restarted.seconds()} s after its restart"
    )

    email = _admin_email(api)
    checked = _reindex(system, email, "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("一致 / agree") == 3, checked.stdout

"""``tsunagu search reindex [--check]`` against the running system: the command signs in at the gateway as
an admin and reads the sources through the public API (it holds no signing key); the check names what
differs between the sources and the indexes (a document missing, one no source has, a recorded version that
is not the source's) and exits non-zero; a reindex repairs them and the check then agrees."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlmodel import Session

from launcher.runner import System
from services.search import repository
from services.search.engine import make_engine
from tests.conftest import PASSWORD, Api, wait_until
from tests.e2e.helpers import create_expert, submit_request, wait_searchable
from tsunagu.db import make_engine as make_database

TSUNAGU = Path(sys.executable).parent / "tsunagu"


def _admin_email(api: Api) -> str:
    from gateway.service import ensure_user
    from tsunagu.db import session_scope

    email = f"reindex-{uuid.uuid4().hex[:10]}@example.jp"
    engine = make_database(api.system.database_url("gateway"))
    with session_scope(engine) as session:
        ensure_user(session, email=email, password=PASSWORD, display_name="reindex admin", role="admin")
    engine.dispose()
    return email


def _reindex(system: System, email: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **system.service_env("search"),
        "TSUNAGU_ADMIN_PASSWORD": PASSWORD,
        "TSUNAGU_PROGRESS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TSUNAGU_SIGNING_KEYS", None)
    env.pop("TSUNAGU_SIGNING_KEYS_FILE", None)
    return subprocess.run(
        [str(TSUNAGU), "search", "reindex", "--gateway", system.url("gateway"), "--email", email, *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.getcwd(),
    )


def test_reindex_check_names_the_differences_and_reindex_repairs_them(system: System, api: Api) -> None:
    expert_headers = api.register("expert")
    first = create_expert(api, expert_headers, name="再索引 一郎", registration_number="731001")
    second = create_expert(api, api.register("expert"), name="再索引 二郎", registration_number="731002")
    wait_searchable(api, "再索引", first["id"])
    wait_searchable(api, "再索引", second["id"])
    request = submit_request(api, api.register("sme"), title="再索引の相談")
    broker = api.account("admin")
    wait_until(
        lambda: api.http.get("/api/v1/search/requests", params={"q": "再索引の相談"}, headers=broker).json()["total"],
        timeout=60,
        message="the request in the requests index",
    )
    email = _admin_email(api)

    # Break the indexes behind the service's back: a document gone, a ghost, a version that is not the source's.
    experts = make_engine("embedded", data_dir=system.config.data_dir, index="experts")
    requests = make_engine("embedded", data_dir=system.config.data_dir, index="requests")
    database = make_database(system.database_url("search"))
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    try:
        experts.delete([first["id"]])
        experts.upsert([{"id": ghost, "kind": "sekisupe", "name": "幽霊 三郎", "active": True}])
        requests.delete([request["id"]])
        with Session(database) as session:
            state = repository.indexed_versions(session, [second["id"]])[second["id"]]
            state.entity_version = 99
            session.add(state)
            session.commit()

        checked = _reindex(system, email, "--check")
        assert checked.returncode == 1, checked.stdout + checked.stderr
        report = checked.stdout
        assert "experts:" in report and "不一致 / differ" in report
        assert f"    {first['id']}" in report.split("missing from the index")[1]
        assert ghost in report.split("in no source")[1]
        assert f"{second['id']}: recorded 99, source" in report
        assert request["id"] in report.split("requests:")[1]
        assert "signing" not in report.lower()

        rebuilt = _reindex(system, email)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert "written" in rebuilt.stdout and "read" in rebuilt.stderr  # the progress bars
        assert experts.get(ghost) is None
        assert experts.get(first["id"])["name"] == "再索引 一郎"
        assert requests.get(request["id"])["title"] == "再索引の相談"

        again = _reindex(system, email, "--check")
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.count("一致 / agree") == 3
        hits = api.http.get("/api/v1/search/experts", params={"q": "再索引"}).json()
        assert {h["id"] for h in hits["items"]} >= {first["id"], second["id"]}
    finally:
        experts.close()
        requests.close()
        database.dispose()

    # Not an admin: refused at the gateway, nothing written.
    refused = _reindex(system, f"nobody-{uuid.uuid4().hex[:6]}@example.jp", "--check")
    assert refused.returncode == 2 and "cannot sign in" in refused.stderr

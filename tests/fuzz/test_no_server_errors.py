"""Property-based fuzzing of every service's own OpenAPI (schemathesis): whatever the input, as anyone or as
an admin, no endpoint answers 5xx. Runs against the real processes of the session's system."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.users.service import API_AUDIENCE
from tests.conftest import TEST_SECRET
from tsunagu.auth import Principal, Role, issue_token
from tsunagu.runner import System

pytestmark = pytest.mark.e2e

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))


@pytest.mark.parametrize("service", ["gateway", "profiles", "matching", "search"])
@pytest.mark.parametrize("caller", ["anonymous", "admin"])
def test_no_input_makes_a_service_fail(system: System, service: str, caller: str) -> None:
    command = [
        SCHEMATHESIS,
        "run",
        system.url(service) + "/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "15",
        "--seed",
        "20261122",
        # Uploads are covered by the import tests; random multipart bodies only slow this down.
        "--exclude-path-regex",
        "/import$",
    ]
    if caller == "admin":
        # The gateway takes the client token (audience tsunagu-api); each service its own audience.
        audience = API_AUDIENCE if service == "gateway" else service
        token = issue_token(Principal(sub="fuzz-admin", role=Role.ADMIN), secret=TEST_SECRET, audience=audience, ttl_seconds=600)
        command += ["-H", f"Authorization: Bearer {token}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

"""Property-based fuzzing of every service's own OpenAPI (schemathesis): whatever the input, as an anonymous
caller, no endpoint answers 5xx. Runs against the real processes of the session's system.

Each service is fuzzed here directly, behind the gateway's back (as a caller holding a per-call token would
reach it). The gateway's merged document, the whole public API as a client sees it, is fuzzed harder by
tests/fuzz/test_stateful_roles.py: every default check, stateful, signed in as each role."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.runner import System

pytestmark = pytest.mark.e2e

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))


@pytest.mark.parametrize("service", ["profiles", "matching", "search"])
# Signed in as each role (admin included), the whole public API is fuzzed through the gateway by
# tests/fuzz/test_stateful_roles.py; here each service's own document, as an anonymous caller.
def test_no_input_makes_a_service_fail(system: System, service: str) -> None:
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
    # Bounded: at most 15 examples per operation, and the whole run in a few minutes (the gateway's merged
    # document has every service's operations).
    result = subprocess.run(command, capture_output=True, text=True, timeout=420, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

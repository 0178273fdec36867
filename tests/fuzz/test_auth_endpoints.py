"""Fuzzing the sign-in endpoints harder than the whole-API run does (issue 9): schemathesis on the gateway's
``/api/v1/auth/...`` operations only, with more examples each (registration, tokens, refresh, logout, password
change, OIDC provider list), anonymous: whatever is sent, no 5xx. Runs against the session's real system."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.runner import System

pytestmark = pytest.mark.e2e

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))


def test_no_input_makes_a_sign_in_endpoint_fail(system: System) -> None:
    command = [
        SCHEMATHESIS,
        "run",
        system.url("gateway") + "/openapi.json",
        "--checks",
        "not_a_server_error",
        "--include-path-regex",
        "^/api/v1/auth/",
        "--max-examples",
        "60",
        "--seed",
        "20261124",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=420, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "/api/v1/auth/" in result.stdout  # the filter selected the sign-in operations, not nothing

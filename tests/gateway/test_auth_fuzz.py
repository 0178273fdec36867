"""Fuzzing of the sign-in, session, OIDC and account-admin endpoints (schemathesis on the running gateway's
OpenAPI, JSON and the OAuth 2 password form alike): whatever the input, anonymous or as a signed-in admin
(a real session: the gateway refuses tokens of no session), none answers 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.e2e

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
AUTH_PATHS = r"^/(api/v1/(auth|admin/(users|audit))|auth/oidc)"


@pytest.mark.parametrize("caller", ["anonymous", "admin"])
def test_no_input_makes_the_auth_endpoints_fail(api: Api, caller: str) -> None:
    command = [
        SCHEMATHESIS,
        "run",
        api.system.url("gateway") + "/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--seed",
        "20261123",
        "--include-path-regex",
        AUTH_PATHS,
    ]
    if caller == "admin":
        # Its own session, kept alive: logging it out would leave the rest of the run anonymous.
        command += ["-H", f"Authorization: {api.account('admin')['authorization']}"]
        command += ["--exclude-path", "/api/v1/auth/logout", "--exclude-path", "/api/v1/auth/password"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=420, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "/api/v1/auth/token" in result.stdout  # the operations were selected and run

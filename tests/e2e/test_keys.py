"""Keys only the gateway holds (issue 9), in the running system: the gateway publishes its public keys; a service
accepts the gateway's per-call tokens and refuses a token signed with a shared secret (even the development
one every process used to hold) or with a key the gateway never published; a rotation of the gateway's key file
is followed by the gateway and by the services without a restart."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from launcher.runner import System
from tests.conftest import Api, wait_until
from tsunagu.auth import ISSUER, Principal, Role, SigningKeys, issue_token
from tsunagu.settings import DEVELOPMENT_TOKEN_SECRET

pytestmark = pytest.mark.e2e

ADMIN = Principal(sub="intruder", role=Role.ADMIN)


def test_the_gateway_publishes_public_keys_only(api: Api) -> None:
    response = api.http.get("/.well-known/jwks.json")
    assert response.status_code == 200 and "max-age" in response.headers["cache-control"]
    keys = response.json()["keys"]
    assert keys and all(k["kty"] == "OKP" and k["crv"] == "Ed25519" and k["kid"] and "d" not in k for k in keys)


def test_a_service_refuses_tokens_the_gateway_did_not_sign(system: System) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "profiles", "iat": now, "exp": now + 60, **ADMIN.model_dump(mode="json")}
    shared = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(DEVELOPMENT_TOKEN_SECRET.encode()), ["HS256"])
    foreign = issue_token(ADMIN, keys=SigningKeys.generate(), audience="profiles")
    for token in (shared, foreign):
        response = httpx.get(
            system.url("profiles") + "/admin/experts/pending", headers={"authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_token"


def test_a_key_rotation_is_followed_without_restarts(system: System, api: Api, admin: dict[str, str]) -> None:
    before = {k["kid"] for k in api.http.get("/.well-known/jwks.json").json()["keys"]}
    key_file = system.config.data_dir / "keys" / "gateway-signing-keys.json"
    assert key_file.exists() and oct(key_file.stat().st_mode)[-3:] == "600"
    rotated = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "keys", "rotate", "--file", str(key_file), "--keep", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    new_kid = rotated.stdout.split()[2].rstrip(";")
    assert new_kid not in before

    published = wait_until(
        lambda: (
            (keys := {k["kid"] for k in api.http.get("/.well-known/jwks.json").json()["keys"]}) >= before | {new_kid}
            and keys
        ),
        timeout=10,
        message="the rotated key published",
    )
    assert new_kid in published and before <= published  # the old keys stay published
    # Calls through the gateway go on working: the services fetch the new key when a token names it.
    for path in ("/api/v1/experts?limit=1", "/api/v1/requests", "/api/v1/search/experts?q=a"):
        response = api.http.get(path, headers=admin)
        assert response.status_code == 200, (path, response.text)
    # A token signed with the new key (read here from the gateway's file, as only the gateway may) is accepted
    # by a service that had never seen that key: it fetched the key set again, no restart.
    rotated_keys = SigningKeys.from_jwks(key_file.read_text())
    assert rotated_keys.keys[0].kid == new_kid
    token = issue_token(Principal(sub="system", role=Role.ADMIN), keys=rotated_keys, audience="profiles")
    direct = httpx.get(system.url("profiles") + "/admin/experts/pending", headers={"authorization": f"Bearer {token}"})
    assert direct.status_code == 200, direct.text

"""The gateway's public signing keys (``/.well-known/jwks.json``): what every service verifies the per-call
tokens with (tsunagu/auth.py, gateway/keys.py). Public by design; cached by clients for five minutes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.deps import SettingsDep
from gateway.keys import signing_keys
from gateway.schemas import JwksRead

router = APIRouter(tags=["keys"])


@router.get("/.well-known/jwks.json", response_model=JwksRead)
def jwks(settings: SettingsDep, response: Response) -> JwksRead:
    response.headers["cache-control"] = "public, max-age=300"
    return JwksRead.model_validate(signing_keys(settings).public_jwks())

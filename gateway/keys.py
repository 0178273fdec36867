"""The gateway's signing keys: loaded, generated for development, rotated.

Only the gateway signs the tokens the services accept (tsunagu/auth.py says why). Its private keys are a JWK
set, newest key first: the first signs, all are published at ``/.well-known/jwks.json``. Where they come from:

- ``TSUNAGU_SIGNING_KEYS``: the key set itself (production: from a Kubernetes Secret or a vault);
- ``TSUNAGU_SIGNING_KEYS_FILE``: a file holding it (``tsunagu gateway keys generate|rotate`` writes one);
- neither, in development and tests: ``<data dir>/keys/gateway-signing-keys.json``, generated on first use.
  Production refuses to start without one of the first two (gateway/settings.py).

Rotation: ``tsunagu gateway keys rotate`` puts a new key in front and keeps the previous ones published, so
tokens signed a moment before still verify; the gateway notices the file changed (its modification time) and
signs with the new key from its next token; services fetch the key set again when a token names a key they do
not know yet. Keys older than the kept ones drop out once no token they signed can still be alive (60 s).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from gateway.settings import GatewaySettings
from tsunagu.auth import SigningKeys

KEY_FILE_NAME = "gateway-signing-keys.json"
_lock = threading.Lock()
_cache: dict[tuple[str, str, float], SigningKeys] = {}


def key_file(settings: GatewaySettings) -> Path:
    return settings.signing_keys_file or settings.data_dir / "keys" / KEY_FILE_NAME


def write_key_file(path: Path, keys: SigningKeys) -> None:
    """Write atomically (a reader never sees half a file), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(keys.private_jwks(), handle)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def signing_keys(settings: GatewaySettings) -> SigningKeys:
    """The key set to sign with now (re-read when the key file changes)."""
    if settings.signing_keys_json:
        key = ("inline", settings.signing_keys_json, 0.0)
        with _lock:
            if key not in _cache:
                _cache[key] = SigningKeys.from_jwks(settings.signing_keys_json)
            return _cache[key]
    path = key_file(settings)
    with _lock:
        if not path.exists():
            if settings.env == "production":  # the settings refuse this already; never generate in production
                raise RuntimeError(f"signing key file {path} is missing")
            write_key_file(path, SigningKeys.generate())
        cache_key = ("file", str(path.resolve()), path.stat().st_mtime)
        if cache_key not in _cache:
            _cache.clear()
            _cache[cache_key] = SigningKeys.from_jwks(path.read_text())
        return _cache[cache_key]


def rotate(path: Path, keep: int = 2) -> SigningKeys:
    """Put a new key in front of the file's key set (creating the file if needed); returns the new set."""
    current = SigningKeys.from_jwks(path.read_text()) if path.exists() else None
    keys = current.rotated(keep=keep) if current else SigningKeys.generate()
    write_key_file(path, keys)
    return keys

"""Signed tokens between the gateway and the services, and who the caller is.

The gateway authenticates people and, for every call to an internal service, signs a short-lived token
whose audience is that service. Only the gateway holds a signing key: it signs with Ed25519 (the
fully-specified JOSE algorithm of RFC 9864), names the key in the token (``kid``) and publishes the
public keys at ``/.well-known/jwks.json``. Each service fetches that key set, caches it, fetches it
again when a token names a key it does not know (a rotation) — at most every few seconds, so a flood of
bogus key ids cannot turn into a flood of fetches — and verifies issuer, audience, expiry and the pinned
algorithm itself. A token that names another algorithm (a shared-secret HS256 token, "none") is refused,
and no service can mint a token: a service that is broken into cannot act as anyone elsewhere.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import httpx
from fastapi import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey
from joserfc.jws import extract_compact
from pydantic import BaseModel, Field

from tsunagu.errors import ApiError, forbidden

ALGORITHM = "Ed25519"  # pinned: the only algorithm a service accepts
ISSUER = "tsunagu-gateway"


class Role(StrEnum):
    """Who a caller is. The one place that says what each role means:

    - ``sme``: a person acting for an SME (中小企業); sees the requests of the organisations they belong to.
    - ``expert``: a 登録セキスペ or DX人材 with a profile of their own.
    - ``broker``: a support organisation's advisor (商工会議所 etc.) who works a set of prefectures: reads
      the requests and the broker-level profile fields there, and brokers matches.
    - ``hub``: staff of a マナビDX Quest hub organisation; *regional staff* like a broker (the same reading
      rights in their prefectures), but brokering actions (proposing an expert) stay with brokers.
    - ``admin``: the operator of the list; ``service``: the system itself (demo loader, scheduled jobs).
    """

    ANONYMOUS = "anonymous"
    SME = "sme"
    EXPERT = "expert"
    BROKER = "broker"
    HUB = "hub"
    ADMIN = "admin"
    SERVICE = "service"


# Roles that work a set of prefectures and read what support staff may read there.
REGIONAL_ROLES = frozenset({Role.BROKER, Role.HUB})


class Principal(BaseModel):
    sub: str
    role: Role
    name: str | None = None
    # The prefectures a broker works (set by an admin in the gateway); object ownership (an SME's
    # organisation, an expert's profile) is checked by the owning service against ``sub``.
    prefectures: list[str] = Field(default_factory=list)

    @property
    def is_privileged(self) -> bool:
        return self.role in (Role.ADMIN, Role.SERVICE)

    @property
    def is_authenticated(self) -> bool:
        return self.role != Role.ANONYMOUS

    @property
    def is_regional_staff(self) -> bool:
        """A broker or hub staff member: reads support-staff data in their prefectures."""
        return self.role in REGIONAL_ROLES

    def covers(self, prefecture: str | None) -> bool:
        """Whether this regional staff member works the prefecture (admins and the system cover all)."""
        return self.is_privileged or (self.is_regional_staff and prefecture in self.prefectures)

    def require(self, *roles: Role) -> None:
        if self.role not in roles and not self.is_privileged:
            raise forbidden()


ANONYMOUS = Principal(sub="anonymous", role=Role.ANONYMOUS)


class SigningKeys:
    """The gateway's private keys, newest first: the first signs, every one is published (so tokens signed
    just before a rotation still verify). Stored as a private JWK set (a file or a secret, never in git)."""

    def __init__(self, keys: list[OKPKey]) -> None:
        if not keys:
            raise ValueError("a signing key set needs at least one key")
        self.keys = keys

    @staticmethod
    def new_key() -> OKPKey:
        return OKPKey.generate_key("Ed25519", parameters={"kid": f"tsunagu-{uuid.uuid4().hex[:16]}", "use": "sig"})

    @classmethod
    def generate(cls) -> SigningKeys:
        return cls([cls.new_key()])

    @classmethod
    def from_jwks(cls, data: str | dict[str, Any]) -> SigningKeys:
        parsed = json.loads(data) if isinstance(data, str) else data
        keys = [OKPKey.import_key(key) for key in parsed.get("keys", [])]
        if any(not key.is_private or key.kid is None for key in keys):
            raise ValueError("every signing key must be a private Ed25519 JWK with a kid")
        return cls(keys)

    def rotated(self, keep: int = 2) -> SigningKeys:
        """A new key in front; ``keep`` older keys stay published until the tokens they signed expired."""
        return SigningKeys([self.new_key(), *self.keys[:keep]])

    def private_jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=True) for key in self.keys]}

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [{**key.as_dict(private=False), "alg": ALGORITHM} for key in self.keys]}

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keys[0]
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}, claims, key, algorithms=[ALGORITHM])


class PublicKeys:
    """A service's view of the gateway's public keys: fetched (``fetch``: the JWKS as a dict), cached for
    ``max_age_seconds``, fetched again early when a token names an unknown key, but not more often than
    ``min_refetch_seconds`` (an unknown key id waits for that, then looks again). Verified tokens are remembered until they expire (the gateway reuses a token
    for the calls of one caller to one service), so a busy service verifies a signature once per token."""

    def __init__(
        self,
        fetch: Callable[[], dict[str, Any]],
        *,
        max_age_seconds: float = 300.0,
        min_refetch_seconds: float = 1.0,
        cache_size: int = 10_000,
    ) -> None:
        self._fetch = fetch
        self.max_age_seconds = max_age_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.cache_size = cache_size
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._verified: dict[tuple[str, str], tuple[Principal, float]] = {}
        self.fetches = 0

    @classmethod
    def from_jwks(cls, data: str | dict[str, Any]) -> PublicKeys:
        parsed = json.loads(data) if isinstance(data, str) else data
        return cls(lambda: parsed)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> PublicKeys:
        def fetch() -> dict[str, Any]:
            response = httpx.get(url, timeout=timeout)
            response.raise_for_status()
            return response.json()

        return cls(fetch)

    def _load(self) -> None:
        try:
            fetched = self._fetch()
            self._keys = KeySet.import_key_set(
                {"keys": [key for key in fetched.get("keys", []) if key.get("kty") == "OKP"]}
            )
        except (httpx.HTTPError, ValueError, JoseError) as error:
            if self._keys is None:
                raise ApiError(
                    503,
                    "keys_unavailable",
                    "認証サービスに接続できません。しばらくしてから再度お試しください",
                    "The gateway's public keys cannot be fetched; try again shortly",
                ) from error
        finally:
            self._fetched_at = time.monotonic()
            self.fetches += 1

    def key_set(self, kid: str) -> KeySet:
        """The key set that should hold ``kid``: fetched again when stale, or when ``kid`` is unknown (a
        rotation). An unknown key right after a fetch waits out the throttle, then fetches once more: a
        token signed with a key published a moment ago is never refused for being early."""
        for _ in range(2):
            with self._lock:
                age = time.monotonic() - self._fetched_at
                known = self._keys is not None and any(key.kid == kid for key in self._keys.keys)
                if self._keys is None or age > self.max_age_seconds or (not known and age >= self.min_refetch_seconds):
                    self._load()
                    assert self._keys is not None
                    return self._keys
                if known:
                    return self._keys  # type: ignore[return-value]
                wait = self.min_refetch_seconds - age
            time.sleep(wait)
        assert self._keys is not None
        return self._keys

    def remembered(self, token: str, audience: str) -> Principal | None:
        hit = self._verified.get((token, audience))
        if hit is None or hit[1] <= time.time():
            return None
        return hit[0]

    def remember(self, token: str, audience: str, principal: Principal, expires_at: float) -> None:
        if len(self._verified) >= self.cache_size:
            self._verified.clear()  # bounded; tokens are short-lived, a cold cache costs one verification each
        self._verified[(token, audience)] = (principal, expires_at)


def issue_token(principal: Principal, *, keys: SigningKeys, audience: str, ttl_seconds: int = 300) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        **principal.model_dump(mode="json"),
    }
    return keys.sign(claims)


def verify_token(token: str, *, keys: PublicKeys, audience: str) -> Principal:
    unauthorized = ApiError(
        401, "invalid_token", "認証情報が無効です。再度ログインしてください", "Invalid or expired token"
    )
    known = keys.remembered(token, audience)
    if known is not None:
        return known
    try:
        header = extract_compact(token.encode()).protected
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise unauthorized
        decoded = jwt.decode(token, keys.key_set(kid), algorithms=[ALGORITHM])
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise unauthorized from error
    try:
        principal = Principal.model_validate({k: v for k, v in decoded.claims.items() if k in Principal.model_fields})
    except ValueError as error:
        raise unauthorized from error
    keys.remember(token, audience, principal, float(decoded.claims["exp"]))
    return principal


def principal_dependency(audience: str, keys: PublicKeys):
    """FastAPI dependency: the verified caller, or ANONYMOUS when no token is sent."""

    def _principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header:
            return ANONYMOUS
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401, "invalid_token", "認証ヘッダーの形式が正しくありません", "Malformed Authorization header"
            )
        return verify_token(token, keys=keys, audience=audience)

    def _remembered(request: Request) -> Principal | None:
        """The caller when it is known without I/O (no token, or a token verified before), else None."""
        header = request.headers.get("authorization", "")
        if not header:
            return ANONYMOUS
        scheme, _, token = header.partition(" ")
        return keys.remembered(token, audience) if scheme.lower() == "bearer" and token else None

    _principal.remembered = _remembered  # type: ignore[attr-defined]  # read by tsunagu.deps.get_caller
    return _principal


def require_authenticated(principal: Principal) -> Principal:
    if principal.role == Role.ANONYMOUS:
        raise ApiError(401, "unauthorized", "ログインが必要です", "Authentication required")
    return principal

"""Signed tokens between the gateway and the services, and who the caller is.

The gateway authenticates people and, for every call to an internal service, signs a short-lived token
whose audience is that service. Each service verifies the token itself: issuer, audience, expiry, and a
pinned algorithm (HS256 only: a token that names another algorithm, or "none", is refused).
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum

from fastapi import Request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from pydantic import BaseModel, Field

from tsunagu.errors import ApiError, forbidden

ALGORITHM = "HS256"
ISSUER = "tsunagu-gateway"


class Role(StrEnum):
    ANONYMOUS = "anonymous"
    SME = "sme"
    EXPERT = "expert"
    BROKER = "broker"
    HUB = "hub"
    ADMIN = "admin"
    SERVICE = "service"  # the system itself (demo loader, scheduled jobs)


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

    def require(self, *roles: Role) -> None:
        if self.role not in roles and not self.is_privileged:
            raise forbidden()


ANONYMOUS = Principal(sub="anonymous", role=Role.ANONYMOUS)


def _key(secret: str) -> OctKey:
    return OctKey.import_key(secret.encode())


def issue_token(principal: Principal, *, secret: str, audience: str, ttl_seconds: int = 300) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        **principal.model_dump(mode="json"),
    }
    return jwt.encode({"alg": ALGORITHM, "typ": "JWT"}, claims, _key(secret), algorithms=[ALGORITHM])


def verify_token(token: str, *, secret: str, audience: str) -> Principal:
    unauthorized = ApiError(401, "invalid_token", "認証情報が無効です。再度ログインしてください", "Invalid or expired token")
    try:
        decoded = jwt.decode(token, _key(secret), algorithms=[ALGORITHM])
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
        return Principal.model_validate({k: v for k, v in decoded.claims.items() if k in Principal.model_fields})
    except ValueError as error:
        raise unauthorized from error


def principal_dependency(audience: str, secret_getter):  # noqa: ANN001, ANN201
    """FastAPI dependency: the verified caller, or ANONYMOUS when no token is sent."""

    def _principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        if not header:
            return ANONYMOUS
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "invalid_token", "認証ヘッダーの形式が正しくありません", "Malformed Authorization header")
        return verify_token(token, secret=secret_getter(), audience=audience)

    return _principal


def require_authenticated(principal: Principal) -> Principal:
    if principal.role == Role.ANONYMOUS:
        raise ApiError(401, "unauthorized", "ログインが必要です", "Authentication required")
    return principal

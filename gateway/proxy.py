"""Forwarding /api/v1 calls to the service that owns the data, with a token signed for that service.

The gateway checks who the caller is; the owning service checks what they may do with which object
(it knows who owns what). Anonymous calls are forwarded without a token, as anonymous.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from gateway.security import current_principal
from tsunagu.auth import Principal, Role, issue_token
from tsunagu.errors import ApiError
from tsunagu.logging import request_id_var

# public prefix -> (service, path prefix at the service)
ROUTES: dict[str, tuple[str, str]] = {
    "/api/v1/experts": ("profiles", "/experts"),
    "/api/v1/organizations": ("profiles", "/organizations"),
    "/api/v1/admin/experts": ("profiles", "/admin/experts"),
    "/api/v1/requests": ("matching", "/requests"),
    "/api/v1/search": ("search", "/search"),
}
_PASSED_REQUEST_HEADERS = ("content-type", "accept", "accept-language")
_PASSED_RESPONSE_HEADERS = ("content-type", "content-disposition", "cache-control")


def service_url(request: Request, service: str) -> str:
    return getattr(request.app.state.settings, f"{service}_url").rstrip("/")


async def forward(request: Request, service: str, path: str, principal: Principal) -> Response:
    settings = request.app.state.settings
    headers = {name: request.headers[name] for name in _PASSED_REQUEST_HEADERS if name in request.headers}
    headers["x-request-id"] = request_id_var.get() or ""
    if principal.role != Role.ANONYMOUS:
        headers["authorization"] = "Bearer " + issue_token(principal, secret=settings.token_secret, audience=service, ttl_seconds=60)
    client: httpx.AsyncClient = request.app.state.http
    # Streamed both ways: a 30,000-row CSV import or export passes through without being held whole.
    outgoing = client.build_request(
        request.method,
        service_url(request, service) + path,
        params=list(request.query_params.multi_items()),
        content=request.stream(),
        headers=headers,
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.TimeoutException as error:
        raise ApiError(504, "upstream_timeout", "処理に時間がかかっています。しばらくしてから再度お試しください", f"The {service} service timed out") from error
    except httpx.TransportError as error:
        raise ApiError(503, "upstream_unavailable", "サービスに接続できません。しばらくしてから再度お試しください", f"The {service} service is unavailable") from error
    passed = {name: upstream.headers[name] for name in _PASSED_RESPONSE_HEADERS if name in upstream.headers}
    return StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code, headers=passed, background=BackgroundTask(upstream.aclose))


def _forwarder(public_prefix: str, service: str, internal_prefix: str):  # noqa: ANN202
    async def _forward(request: Request, principal: Principal = Depends(current_principal)) -> Response:
        rest = request.url.path[len(public_prefix):]
        return await forward(request, service, internal_prefix + rest, principal)

    return _forward


def build_router() -> APIRouter:
    router = APIRouter(tags=["api"])
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    for public_prefix, (service, internal_prefix) in ROUTES.items():
        handler = _forwarder(public_prefix, service, internal_prefix)
        router.add_api_route(public_prefix, handler, methods=methods, include_in_schema=False)
        router.add_api_route(public_prefix + "/{rest:path}", handler, methods=methods, include_in_schema=False)
    return router

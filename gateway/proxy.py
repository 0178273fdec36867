"""Forwarding /api/v1 calls to the service that owns the data, with a token signed for that service.

The gateway checks who the caller is; the owning service checks what they may do with which object
(it knows who owns what). Anonymous calls are forwarded without a token, as anonymous. ``ROUTES`` is the one
map from public paths to services: the proxy routes and the merged OpenAPI (``gateway.openapi``) both read it.

Speed (issue 13, docs/performance.md): one pooled client per process keeps connections to each service
alive (``upstream_client``), through aiohttp's pool and C parser under httpx's interface; a small body (known
length up to ``BUFFERED_BYTES``) is sent and answered whole, with its length, and only large or unknown-length
bodies (a CSV import or export) are streamed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from httpx_aiohttp import AiohttpTransport
from starlette.background import BackgroundTask

from gateway.security import upstream_token
from gateway.settings import GatewaySettings
from tsunagu.auth import Principal
from tsunagu.errors import ApiError
from tsunagu.logging import request_id_var

# public prefix -> (service, path prefix at the service)
ROUTES: dict[str, tuple[str, str]] = {
    "/api/v1/experts": ("profiles", "/experts"),
    "/api/v1/organizations": ("profiles", "/organizations"),
    "/api/v1/admin/experts": ("profiles", "/admin/experts"),
    "/api/v1/requests": ("matching", "/requests"),
    "/api/v1/proposals": ("matching", "/proposals"),
    "/api/v1/engagements": ("matching", "/engagements"),
    "/api/v1/search": ("search", "/search"),
    # 相談会 (consultation days) and マナビDX Quest hub projects (issue 11)
    "/api/v1/sessions": ("matching", "/sessions"),
    "/api/v1/projects": ("matching", "/projects"),
    # the search indexes' sources for `tsunagu search reindex` (issue 12; admins)
    "/api/v1/admin/search-sources": ("matching", "/admin/search-sources"),
}
SERVICES = sorted({service for service, _ in ROUTES.values()})
_PASSED_REQUEST_HEADERS = ("content-type", "accept", "accept-language")
# allow: a 405 names the methods the path takes (RFC 9110); retry-after: when to try a 429 or 503 again.
_PASSED_RESPONSE_HEADERS = ("content-type", "content-disposition", "cache-control", "allow", "retry-after")


BUFFERED_BYTES = 1_000_000  # bodies up to this size (the default body limit) are passed whole, not streamed
_BODILESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_RETRIED_METHODS = frozenset({"GET", "HEAD"})


def upstream_client(settings: GatewaySettings) -> httpx.AsyncClient:
    """The gateway's one client for calls to the services: kept-alive HTTP/1.1 connections, enough of them
    kept for every concurrent call (more concurrent callers than kept connections made a pool open and close
    a connection per call). A read (GET, HEAD) that meets a broken connection is sent once more on a fresh one
    (``forward``); a write never is.

    Each service has a pool of its own (httpx ``mounts``), and each pool is aiohttp's (``ServiceTransport``):
    httpx's own transport (httpcore) polled every idle connection of its pool for a closed socket before each
    call and framed HTTP/1.1 in Python, a third of the gateway's CPU under the load mix (py-spy); aiohttp's
    client cost 0.49 ms of CPU per call against httpcore's 1.39 ms, same machine, same server."""
    return httpx.AsyncClient(
        timeout=settings.upstream_timeout_seconds,
        limits=_LIMITS,
        mounts={settings.service_url(service): ServiceTransport(limits=_LIMITS) for service in SERVICES},
    )


# Idle connections are dropped before uvicorn drops them (its keep-alive is 5 s): a call is never sent on a
# connection the service is closing at that moment.
_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=4)


class ServiceTransport(AiohttpTransport):
    """httpx-aiohttp's transport with aiohttp's errors named as httpx names them, which is what ``forward``
    acts on: httpx-aiohttp maps every connection error to a connect timeout, so a refused connection would
    have been a 504 instead of a 503, and a kept-alive connection the service closed would not have been
    tried again for a read."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as error:
            raise _as_httpx(error, request) from error.__cause__


def _as_httpx(error: httpx.TransportError, request: httpx.Request) -> httpx.TransportError:
    cause = error.__cause__
    if isinstance(cause, aiohttp.ServerTimeoutError):  # a connect or read timeout
        return error
    if isinstance(cause, aiohttp.ClientConnectorError):  # refused, unreachable: nothing was sent
        return httpx.ConnectError(str(cause), request=request)
    if isinstance(cause, aiohttp.ServerDisconnectedError):  # closed before it answered (e.g. a stale connection)
        return httpx.RemoteProtocolError(str(cause), request=request)
    if isinstance(cause, aiohttp.ClientConnectionError):  # reset while writing or reading
        return httpx.ReadError(str(cause), request=request)
    return error


def _small(length: str | None) -> bool:
    return length is not None and length.isdigit() and int(length) <= BUFFERED_BYTES


def _unavailable(service: str) -> ApiError:
    return ApiError(
        503,
        "upstream_unavailable",
        "サービスに接続できません。しばらくしてから再度お試しください",
        f"The {service} service is unavailable",
    )


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def resolve(public_path: str) -> tuple[str, str] | None:
    """(service, path at the service) for a public path, or None when no service owns it."""
    for public_prefix, (service, internal_prefix) in ROUTES.items():
        if _under(public_path, public_prefix):
            return service, internal_prefix + public_path[len(public_prefix) :]
    return None


def public_path(service: str, internal_path: str) -> str | None:
    """The public form of a service's path (the inverse of ``resolve``), or None when it is not proxied."""
    for public_prefix, (owner, internal_prefix) in ROUTES.items():
        if owner == service and _under(internal_path, internal_prefix):
            return public_prefix + internal_path[len(internal_prefix) :]
    return None


async def forward(
    request: Request,
    client: httpx.AsyncClient,
    settings: GatewaySettings,
    service: str,
    path: str,
    principal: Principal,
) -> Response:
    headers = {name: request.headers[name] for name in _PASSED_REQUEST_HEADERS if name in request.headers}
    headers["x-request-id"] = request_id_var.get() or ""
    if principal.is_authenticated:
        headers["authorization"] = "Bearer " + upstream_token(principal, settings, service)
    # Large bodies are streamed both ways: a 30,000-row CSV import or export passes through without being held
    # whole. A small one is read first, so it goes with its length rather than chunked (and a GET with none).
    content: bytes | AsyncIterator[bytes] | None
    length = request.headers.get("content-length")
    if request.method in _BODILESS_METHODS and length is None and "transfer-encoding" not in request.headers:
        content = None
    elif _small(length):
        content = await request.body()
    else:
        content = request.stream()
    outgoing = client.build_request(
        request.method,
        settings.service_url(service) + path,
        params=list(request.query_params.multi_items()),
        content=content,
        headers=headers,
    )
    try:
        try:
            upstream = await client.send(outgoing, stream=True)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if request.method not in _RETRIED_METHODS or not isinstance(content, bytes | None):
                raise
            upstream = await client.send(outgoing, stream=True)  # a kept-alive connection closed under it
    except httpx.TimeoutException as error:
        raise ApiError(
            504,
            "upstream_timeout",
            "処理に時間がかかっています。しばらくしてから再度お試しください",
            f"The {service} service timed out",
        ) from error
    except httpx.TransportError as error:
        raise _unavailable(service) from error
    passed = {name: upstream.headers[name] for name in _PASSED_RESPONSE_HEADERS if name in upstream.headers}
    if _small(upstream.headers.get("content-length")):
        try:
            body = await upstream.aread()
        except httpx.TransportError as error:
            raise _unavailable(service) from error
        finally:
            await upstream.aclose()
        return Response(body, status_code=upstream.status_code, headers=passed)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=passed,
        background=BackgroundTask(upstream.aclose),
    )

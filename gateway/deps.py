"""The gateway's dependencies as types. The kernel's (``tsunagu.deps``: ``SessionDep``, ``RuntimeDep``...)
are used as they are; these add what only the gateway has:

- ``SettingsDep``: the ``GatewaySettings`` (upstream URLs, token lifetime, rate limits).
- ``UpstreamDep``: the one pooled ``httpx.AsyncClient`` for calls to the services.
- ``CallerDep``: the caller of the *public* API (audience ``tsunagu-api``, bearer token or the web UI's
  cookie), or the anonymous principal; ``CurrentUserDep``: a signed-in caller (401 otherwise);
  ``AdminUserDep``: an admin (403 otherwise). The app also installs ``client_principal`` as the runtime's
  principal, so the kernel's ``CallerDep`` reads the same caller in the gateway. Either way the caller is
  read from a live server-side session (``gateway.security``): a token of an ended session is refused.
  ``CallerDep`` is the one way a route learns who is calling (cookie or bearer).
- ``WriteLimitDep``: counts a state-changing call (POST, PUT, PATCH, DELETE) against the caller's write
  limit (``TSUNAGU_WRITE_RATE_LIMIT``; 429 with Retry-After); reads pass uncounted.

They are ``async def`` on purpose (issue 13): FastAPI runs a plain ``def`` dependency in a worker thread, and
on the proxied path those hand-offs cost more than the work (py-spy: a fifth of the gateway's time). What may
block (the session lookup when not remembered, a rate-limit store over the network) still goes to a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

import httpx
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from gateway import service
from gateway.security import client_principal_async
from gateway.settings import GatewaySettings
from tsunagu.auth import Principal, Role, require_authenticated
from tsunagu.deps import RuntimeDep
from tsunagu.errors import forbidden


async def get_settings(runtime: RuntimeDep) -> GatewaySettings:
    return cast(GatewaySettings, runtime.settings)


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]


async def get_upstream(request: Request) -> httpx.AsyncClient:
    return request.app.state.http


UpstreamDep = Annotated[httpx.AsyncClient, Depends(get_upstream)]


async def get_caller(request: Request, settings: SettingsDep) -> Principal:
    return await client_principal_async(request, settings)


CallerDep = Annotated[Principal, Depends(get_caller)]


async def get_current_user(caller: CallerDep) -> Principal:
    return require_authenticated(caller)


CurrentUserDep = Annotated[Principal, Depends(get_current_user)]


async def get_admin_user(user: CurrentUserDep) -> Principal:
    if user.role != Role.ADMIN:
        raise forbidden("管理者のみが行えます", "Admins only")
    return user


AdminUserDep = Annotated[Principal, Depends(get_admin_user)]


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def limit_writes(request: Request, caller: CallerDep, settings: SettingsDep) -> None:
    if request.method not in _SAFE_METHODS:  # the limits' store may be Redis: counted in a worker thread
        client = request.client.host if request.client else "unknown"
        await run_in_threadpool(service.check_write_rate, settings, caller, client)


WriteLimitDep = Annotated[None, Depends(limit_writes)]


@dataclass(frozen=True)
class Forwarding:
    """What the proxy needs for one call: who calls, the settings and the upstream client."""

    caller: Principal
    settings: GatewaySettings
    client: httpx.AsyncClient


async def forwarding(request: Request) -> Forwarding:
    """What a proxied call needs: the caller (as ``CallerDep``) with a write counted against their limit (as
    ``WriteLimitDep``). Awaited by the proxied endpoint itself (``gateway.routes.proxy``), which declares no
    dependency: FastAPI's solving of a tree of them cost a fifth of the gateway's time per proxied call
    (cProfile), and solving even this one a sixth of what was left."""
    settings = cast(GatewaySettings, request.app.state.runtime.settings)
    caller = await client_principal_async(request, settings)
    await limit_writes(request, caller, settings)
    return Forwarding(caller, settings, request.app.state.http)

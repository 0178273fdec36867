"""The public routes of everything the services own (``gateway.proxy.ROUTES``): every method under each
public prefix is forwarded. They are left out of the gateway's own schema; ``gateway.openapi`` documents them
from the services' schemas instead.

The endpoint declares no dependency: it awaits what a forwarded call needs (``gateway.deps.forwarding``: the
caller and their write limit) itself. Solving even that one dependency per call was about a sixth of the
gateway's CPU per proxied call (in-process, mock services: 1.32 → 1.14 ms per GET); errors still reach the
app's handlers (bilingual JSON) and the latency metric still names the route's template.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gateway import proxy
from gateway.deps import forwarding
from tsunagu.errors import not_found

router = APIRouter(tags=["api"])
# OPTIONS and TRACE too: the service that owns the path answers them (405 with the methods it takes in Allow).
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


async def forward(request: Request) -> Response:
    target = proxy.resolve(request.url.path)
    if target is None:  # only reachable if a route below and ROUTES disagree
        raise not_found("API", "API path")
    service, path = target
    call = await forwarding(request)
    return await proxy.forward(request, call.client, call.settings, service, path, call.caller)


for _prefix in proxy.ROUTES:
    router.add_api_route(_prefix, forward, methods=METHODS, include_in_schema=False)
    router.add_api_route(_prefix + "/{rest:path}", forward, methods=METHODS, include_in_schema=False)

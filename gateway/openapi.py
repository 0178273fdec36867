"""One OpenAPI for the whole public API: the gateway's own routes plus every proxied service route, in its
public ``/api/v1/...`` form, generated from the services' own OpenAPI documents (never written twice, and
without importing any service: they are fetched over HTTP, as the proxy reaches them).

The services' documents are fetched when ``/openapi.json`` is first asked for; one that does not answer yet
is asked again at the next request, and the merged document is cached once every service has answered.
Only paths the proxy forwards (``gateway.proxy.ROUTES``) are taken. Schema names are kept when they are
free or name the same schema; a different schema under a taken name is renamed ``<service>_<Name>`` and
every reference to it rewritten. Operation ids get the service's name in front, so they stay unique.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.proxy import SERVICES, public_path
from gateway.settings import GatewaySettings
from tsunagu.openapi import document_errors

log = logging.getLogger(__name__)

SCHEMA_REF = "#/components/schemas/"
FETCH_TIMEOUT_SECONDS = 5.0
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

OpenApi = dict[str, Any]


def _refs(node: Any) -> set[str]:
    """Names of the component schemas a fragment refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            found.add(ref[len(SCHEMA_REF) :])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def _rewrite(node: Any, names: dict[str, str]) -> Any:
    """A copy of a fragment with schema references renamed."""
    if isinstance(node, dict):
        copied = {key: _rewrite(value, names) for key, value in node.items()}
        ref = copied.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF):
            copied["$ref"] = SCHEMA_REF + names.get(ref[len(SCHEMA_REF) :], ref[len(SCHEMA_REF) :])
        return copied
    if isinstance(node, list):
        return [_rewrite(value, names) for value in node]
    return node


def _schema_names(service: str, schemas: dict[str, Any], taken: dict[str, Any]) -> dict[str, str]:
    """Each of a service's schema names -> its name in the merged document."""
    renamed = {name for name, schema in schemas.items() if name in taken and taken[name] != schema}
    changed = True
    while changed:  # a schema shared by name must not refer to a schema that had to be renamed
        changed = False
        for name, schema in schemas.items():
            if name in taken and name not in renamed and _refs(schema) & renamed:
                renamed.add(name)
                changed = True
    names = {}
    for name in schemas:
        if name not in renamed:
            names[name] = name
            continue
        candidate, n = f"{service}_{name}", 2
        while candidate in taken or candidate in schemas:
            candidate, n = f"{service}_{name}_{n}", n + 1
        names[name] = candidate
    return names


def merge(base: OpenApi, upstreams: dict[str, OpenApi]) -> OpenApi:
    """The gateway's document with the proxied paths and schemas of each service added."""
    merged = copy.deepcopy(base)
    paths = merged.setdefault("paths", {})
    components = merged.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for service in sorted(upstreams):
        document = upstreams[service]
        theirs = document.get("components", {}).get("schemas", {})
        names = _schema_names(service, theirs, schemas)
        for name, schema in theirs.items():
            schemas.setdefault(names[name], _rewrite(schema, names))
        for kind, entries in document.get("components", {}).items():
            if kind != "schemas":
                for name, entry in entries.items():
                    components.setdefault(kind, {}).setdefault(name, entry)
        for path, item in document.get("paths", {}).items():
            public = public_path(service, path)
            if public is None or public in paths:
                continue
            rewritten = _rewrite(item, names)
            for method in _METHODS:
                operation = rewritten.get(method)
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["operationId"] = f"{service}_{operation['operationId']}"
            paths[public] = rewritten
    return merged


class MergedOpenApi:
    """The merged document of one gateway app, fetched lazily and cached once complete."""

    def __init__(self, app: FastAPI, settings: GatewaySettings, client: httpx.AsyncClient) -> None:
        self.app = app
        self.settings = settings
        self.client = client
        self.upstreams: dict[str, OpenApi] = {}
        self._base: OpenApi | None = None
        self._complete: OpenApi | None = None
        self._lock = asyncio.Lock()

    def base(self) -> OpenApi:
        """The gateway's own routes (what FastAPI would have served)."""
        if self._base is None:
            self._base = document_errors(
                get_openapi(
                    title=self.app.title,
                    version=self.app.version,
                    description=self.app.description,
                    routes=self.app.routes,
                )
            )
        return self._base

    def current(self) -> OpenApi:
        """What is known now, without waiting (``app.openapi``)."""
        if self._complete is not None:
            return self._complete
        merged = merge(self.base(), self.upstreams)
        if len(self.upstreams) == len(SERVICES):
            self._complete = merged
        return merged

    async def _fetch(self, service: str) -> None:
        url = self.settings.service_url(service) + "/openapi.json"
        try:
            response = await self.client.get(url, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as error:
            log.warning("upstream OpenAPI not available yet", extra={"service_name": service, "error": repr(error)})
            return
        self.upstreams[service] = document

    async def document(self) -> OpenApi:
        """The merged document, asking the services that have not answered yet."""
        if self._complete is None:
            async with self._lock:
                missing = [service for service in SERVICES if service not in self.upstreams]
                await asyncio.gather(*(self._fetch(service) for service in missing))
        return self.current()


def install(app: FastAPI, settings: GatewaySettings, client: httpx.AsyncClient) -> MergedOpenApi:
    """Serve the merged document at the app's OpenAPI URL (instead of FastAPI's own route)."""
    merged = MergedOpenApi(app, settings, client)

    async def openapi_json(_request: Request) -> JSONResponse:
        return JSONResponse(await merged.document())

    url = app.openapi_url or "/openapi.json"
    app.router.routes[:] = [route for route in app.router.routes if getattr(route, "path", None) != url]
    app.router.routes.insert(0, Route(url, openapi_json, methods=["GET"], include_in_schema=False))
    app.openapi = merged.current  # type: ignore[method-assign]
    return merged

"""The gateway's OpenAPI documents the whole public API: its own routes and every proxied route in its public
form, with the request and response schemas the services declare (fetched over HTTP, merged, cached)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.openapi import merge
from gateway.settings import GatewaySettings
from launcher.runner import System

REF = "#/components/schemas/"


def schema_of(document: dict, ref: str) -> dict:
    return document["components"]["schemas"][ref.removeprefix(REF)]


def test_proxied_routes_appear_with_their_schemas(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert "/api/v1/auth/token" in paths and "/api/v1/reference/prefectures" in paths
    submit = paths["/api/v1/requests"]["post"]
    body = schema_of(document, submit["requestBody"]["content"]["application/json"]["schema"]["$ref"])
    assert set(body["properties"]) == {"title", "prefecture"}
    created = schema_of(document, submit["responses"]["201"]["content"]["application/json"]["schema"]["$ref"])
    assert set(created["properties"]) == {"id", "title"}
    search = paths["/api/v1/search/experts"]["get"]
    assert [p["name"] for p in search["parameters"]] == ["q"]
    page = schema_of(document, search["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    assert set(page["properties"]) == {"items", "total", "limit", "offset"}
    # Only what the proxy forwards; operation ids stay unique.
    assert "/internal/only" not in paths and not any(path.startswith("/search") for path in paths)
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values() if "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids))
    assert client.app.openapi()["paths"].keys() == paths.keys()  # app.openapi() serves the same document


def test_a_service_that_does_not_answer_yet_is_asked_again(settings: GatewaySettings, upstream: FastAPI) -> None:
    calls = {"refused": 0}
    asgi = httpx.ASGITransport(app=upstream)

    async def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith("matching") and calls["refused"] == 0:
            calls["refused"] += 1
            raise httpx.ConnectError("not up yet", request=request)
        return await asgi.handle_async_request(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(flaky))
    with TestClient(create_app(settings, upstream=http)) as client:
        first = client.get("/openapi.json").json()["paths"]
        assert "/api/v1/search/experts" in first and "/api/v1/requests" not in first
        assert "/api/v1/requests" in client.get("/openapi.json").json()["paths"]


def test_schemas_with_one_name_but_different_shapes_are_both_kept() -> None:
    base = {"paths": {}, "components": {"schemas": {"Item": {"type": "string"}}}}
    upstream = {
        "paths": {
            "/search/experts": {
                "get": {
                    "operationId": "search",
                    "responses": {"200": {"content": {"application/json": {"schema": {"$ref": REF + "Item"}}}}},
                }
            }
        },
        "components": {"schemas": {"Item": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    }
    merged = merge(base, {"search": upstream})
    operation = merged["paths"]["/api/v1/search/experts"]["get"]
    assert operation["operationId"] == "search_search"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == REF + "search_Item"
    assert merged["components"]["schemas"]["Item"] == {"type": "string"}
    assert merged["components"]["schemas"]["search_Item"]["type"] == "object"


@pytest.mark.e2e
def test_the_running_gateway_documents_the_services_routes(system: System) -> None:
    document = httpx.get(system.url("gateway") + "/openapi.json", timeout=30).json()
    paths = document["paths"]
    submit = paths["/api/v1/requests"]["post"]
    body_ref = submit["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert {"title", "prefecture", "topics"} <= set(schema_of(document, body_ref)["properties"])
    assert "201" in submit["responses"] and "$ref" in str(submit["responses"]["201"])
    search = paths["/api/v1/search/experts"]["get"]
    assert {"q", "prefecture"} <= {p["name"] for p in search["parameters"]}
    assert "$ref" in str(search["responses"]["200"])
    for path in ("/api/v1/experts", "/api/v1/organizations", "/api/v1/admin/experts/export", "/api/v1/auth/token"):
        assert path in paths, sorted(paths)
    refs = {ref.removeprefix(REF) for ref in _refs(document)}
    assert refs <= set(document["components"]["schemas"]), refs - set(document["components"]["schemas"])


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []

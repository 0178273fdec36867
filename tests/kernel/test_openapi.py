"""tsunagu/openapi.py: every error response of a service's document is the ApiError body the kernel sends,
and a 405 names every method its path takes (tsunagu/errors.py ``allowed_methods``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from tests.kernel.conftest import make_app
from tsunagu.errors import ApiError, not_found
from tsunagu.openapi import ERROR_SCHEMA, NO_CONTROL_CHARACTERS, ApiErrorBody, document_errors, install_error_docs
from tsunagu.types import IsoDateTime

REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}


def documented_app():
    app = make_app()

    @app.get("/things")
    def things(q: Annotated[str | None, Query(max_length=20)] = None, kind: Annotated[list[str], Query()] = []) -> list:  # noqa: B006
        return []

    @app.post("/things", status_code=201)
    def add() -> dict:
        return {}

    own = {"description": "a page", "content": {"text/html": {}}}

    @app.get("/page", responses={"4XX": own, "422": own})
    def page() -> dict:
        return {}

    install_error_docs(app)
    return app


def test_every_operation_documents_the_api_error_body_for_4xx_422_and_503() -> None:
    document = documented_app().openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and ERROR_SCHEMA in schemas
    create = document["paths"]["/items"]["post"]["responses"]
    assert create["422"]["content"]["application/json"]["schema"] == REF
    for path, method in [("/items", "post"), ("/things", "get"), ("/things", "post"), ("/boom", "get")]:
        responses = document["paths"][path][method]["responses"]
        assert responses["4XX"]["content"]["application/json"]["schema"] == REF
        assert responses["503"]["content"]["application/json"]["schema"] == REF
    # An operation that says what its own errors look like keeps it (a page for browsers).
    page = document["paths"]["/page"]["get"]["responses"]
    assert "text/html" in page["4XX"]["content"] and "text/html" in page["422"]["content"]


def test_free_text_parameters_promise_no_control_characters() -> None:
    parameters = {p["name"]: p["schema"] for p in documented_app().openapi()["paths"]["/things"]["get"]["parameters"]}
    assert parameters["q"]["anyOf"][0]["pattern"] == NO_CONTROL_CHARACTERS
    assert parameters["kind"]["items"]["pattern"] == NO_CONTROL_CHARACTERS
    client = TestClient(documented_app())
    assert client.get("/things", params={"q": "a\x00b"}).status_code == 422  # what the pattern says


def test_document_errors_is_idempotent() -> None:
    document = documented_app().openapi()
    once = repr(document)
    assert repr(document_errors(document)) == once


def test_the_documented_schema_is_what_errors_send() -> None:
    adapter = TypeAdapter(ApiErrorBody)
    adapter.validate_python(not_found("専門家", "Expert").body())
    adapter.validate_python(ApiError(429, "too_many_requests", "多すぎます", "Too many").body())
    client = TestClient(documented_app(), raise_server_exceptions=False)
    for response in (client.post("/items", json={"name": "toolongname"}), client.get("/nowhere"), client.get("/boom")):
        adapter.validate_python(response.json())


def test_a_405_names_every_method_of_the_path() -> None:
    client = TestClient(documented_app())
    response = client.put("/things")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_iso_date_times_only() -> None:
    adapter = TypeAdapter(IsoDateTime)
    assert adapter.validate_python("2026-04-01T09:00:00+09:00").hour == 9
    for wrong in ("0.5", "1700000000", "2026-04-01"):
        try:
            adapter.validate_python(wrong)
        except ValueError:
            continue
        raise AssertionError(f"{wrong!r} was taken as a date-time")

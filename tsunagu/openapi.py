"""What every service's OpenAPI document says about errors, in one place.

Every 4xx of every service (and of the gateway) has one body, ``tsunagu.errors.ApiError``'s
``{"error": {"code", "message_ja", "message_en", "fields": [...]}}``, but FastAPI only documents a 422 with its
own ``HTTPValidationError`` shape, which we never send. A client (or a fuzzer checking responses against the
document, tests/fuzz) would then meet undocumented 401/403/404/409/413/429s and a 422 that does not match its
schema. Rather than repeat ``responses=`` on each of ~100 routes, :func:`document_errors` rewrites a finished
document: it adds the ``ApiError`` schema, points FastAPI's 422 at it, and gives every operation a ``4XX`` response
with that body (an operation that declares its own ``4XX``, e.g. a page for browsers, keeps it), and a 503
(a database or, behind the gateway, a service that cannot be reached; clients retry).

It also says what the request middleware (``tsunagu.service.RequestContextMiddleware``) enforces on every URL:
no control characters in a path or query string (``tsunagu.validation``), as a ``pattern`` on each free-text
string parameter, so the document does not promise that ``?q=%00`` is accepted.

``install_error_docs`` wraps ``app.openapi`` (used by ``tsunagu.service.create_service_app``); the gateway's merged
document applies the same function to its own routes (``gateway.openapi``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

OpenApi = dict[str, Any]

ERROR_SCHEMA = "ApiError"
_REF = "#/components/schemas/"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The characters RequestContextMiddleware refuses in a path or query (tsunagu.validation: C0 controls except
# tab, line feed and carriage return, and DEL), as a JSON Schema pattern.
NO_CONTROL_CHARACTERS = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$"


class ErrorField(BaseModel):
    field: str = Field(description="the input that was refused, e.g. `prefectures.0`, `path`, `query`")
    message_ja: str
    message_en: str


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable, e.g. `validation_error`, `not_found`, `forbidden`")
    message_ja: str = Field(description="for the user, in Japanese")
    message_en: str = Field(description="the same in English")
    fields: list[ErrorField] = Field(default_factory=list)


class ApiErrorBody(BaseModel):
    """The body of every 4xx and 5xx (tsunagu.errors.ApiError)."""

    error: ErrorDetail


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": _REF + ERROR_SCHEMA}}}}


def _add_schemas(document: OpenApi) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    generated = ApiErrorBody.model_json_schema(ref_template=_REF + "{model}")
    for name, schema in generated.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas[ERROR_SCHEMA] = generated
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)


def _restrict_free_text(parameter: dict[str, Any]) -> None:
    if parameter.get("in") not in ("path", "query"):
        return
    schema = parameter.get("schema")
    candidates = []
    if isinstance(schema, dict):
        candidates = [schema, *schema.get("anyOf", []), schema.get("items") or {}]
        candidates += [option.get("items") or {} for option in schema.get("anyOf", []) if isinstance(option, dict)]
    for candidate in candidates:
        if (
            isinstance(candidate, dict)
            and candidate.get("type") == "string"
            and not {"enum", "const", "format", "pattern"} & candidate.keys()
        ):
            candidate["pattern"] = NO_CONTROL_CHARACTERS


def document_errors(document: OpenApi) -> OpenApi:
    """The document with the ApiError body on every error response (changed in place and returned)."""
    _add_schemas(document)
    for item in document.get("paths", {}).values():
        for parameter in item.get("parameters", []):
            _restrict_free_text(parameter)
        for method in _METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                _restrict_free_text(parameter)
            responses = operation.setdefault("responses", {})
            if "HTTPValidationError" in repr(responses.get("422", "")):  # FastAPI's, never sent; not a route's own
                responses["422"] = _error_response("入力内容に誤りがあります / Invalid input (the fields are named)")
            responses.setdefault(
                "4XX",
                _error_response(
                    "認証・権限・対象なし・競合・件数制限など / Not signed in, not allowed, not found, conflict, "
                    "too large, too many requests"
                ),
            )
            responses.setdefault(
                "503",
                _error_response(
                    "一時的に利用できません（データベースや他のサービスに接続できない）。しばらくして再度お試しください / "
                    "Unavailable for a moment (the database or another service cannot be reached): retry later"
                ),
            )
    return document


def install_error_docs(app: FastAPI) -> None:
    """Serve the app's document with the errors documented (FastAPI still builds and caches it)."""
    build: Callable[[], OpenApi] = app.openapi

    def openapi() -> OpenApi:
        return document_errors(build())

    app.openapi = openapi  # type: ignore[method-assign]

"""Errors as users get them: a 4xx with a Japanese message first, English beside, and the field.

Body shape (every service and the gateway):
    {"error": {"code": "...", "message_ja": "...", "message_en": "...",
               "fields": [{"field": "prefecture", "message_ja": "...", "message_en": "..."}]}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tsunagu.db import is_database_unavailable

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_SECONDS = 5  # a restarting PostgreSQL is usually back within seconds


def database_unavailable() -> ApiError:
    """The 503 a caller gets while the service's database cannot be reached: nothing was written (the
    transaction never committed), so the same request may simply be sent again."""
    return ApiError(
        503,
        "database_unavailable",
        "データベースに一時的に接続できません。しばらく待ってから再度お試しください（処理は行われていません）",
        "The database is temporarily unavailable. Please try again shortly (nothing was changed)",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


class FieldError(dict):
    def __init__(self, field: str, message_ja: str, message_en: str) -> None:
        super().__init__(field=field, message_ja=message_ja, message_en=message_en)


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str,
        message_ja: str,
        message_en: str,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message_en)
        self.status_code = status_code
        self.code = code
        self.message_ja = message_ja
        self.message_en = message_en
        self.fields = fields or []
        self.headers = headers  # e.g. Retry-After on a 429

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message_ja": self.message_ja,
                "message_en": self.message_en,
                "fields": list(self.fields),
            }
        }


def not_found(what_ja: str, what_en: str) -> ApiError:
    return ApiError(404, "not_found", f"{what_ja}が見つかりません", f"{what_en} not found")


def forbidden(message_ja: str = "この操作を行う権限がありません", message_en: str = "You may not do this") -> ApiError:
    return ApiError(403, "forbidden", message_ja, message_en)


def invalid_field(field: str, message_ja: str, message_en: str) -> ApiError:
    return ApiError(
        422,
        "validation_error",
        f"入力内容に誤りがあります（{field}）: {message_ja}",
        f"Invalid input ({field}): {message_en}",
        [FieldError(field, message_ja, message_en)],
    )


# pydantic error type -> (Japanese, English); {ctx keys} are filled from the error's context.
_MESSAGES: dict[str, tuple[str, str]] = {
    "missing": ("必須項目です", "This field is required"),
    "string_too_long": ("{max_length}文字以内で入力してください", "At most {max_length} characters"),
    "string_too_short": ("{min_length}文字以上で入力してください", "At least {min_length} characters"),
    "too_long": ("{max_length}件以内にしてください", "At most {max_length} items"),
    "too_short": ("{min_length}件以上にしてください", "At least {min_length} items"),
    "string_type": ("文字列で入力してください", "Must be a string"),
    "int_type": ("整数で入力してください", "Must be an integer"),
    "int_parsing": ("整数で入力してください", "Must be an integer"),
    "int_from_float": ("整数で入力してください", "Must be a whole number"),
    "float_parsing": ("数値で入力してください", "Must be a number"),
    "bool_type": ("true か false で指定してください", "Must be true or false"),
    "bool_parsing": ("true か false で指定してください", "Must be true or false"),
    "list_type": ("配列で指定してください", "Must be a list"),
    "dict_type": ("オブジェクトで指定してください", "Must be an object"),
    "model_type": ("オブジェクトで指定してください", "Must be an object"),
    "greater_than_equal": ("{ge}以上にしてください", "Must be at least {ge}"),
    "greater_than": ("{gt}より大きくしてください", "Must be greater than {gt}"),
    "less_than_equal": ("{le}以下にしてください", "Must be at most {le}"),
    "less_than": ("{lt}未満にしてください", "Must be less than {lt}"),
    "literal_error": ("次のいずれかを指定してください: {expected}", "Must be one of: {expected}"),
    "enum": ("次のいずれかを指定してください: {expected}", "Must be one of: {expected}"),
    "date_from_datetime_parsing": ("日付は YYYY-MM-DD 形式で入力してください", "Dates are YYYY-MM-DD"),
    "date_parsing": ("日付は YYYY-MM-DD 形式で入力してください", "Dates are YYYY-MM-DD"),
    "date_type": ("日付は YYYY-MM-DD 形式で入力してください", "Dates are YYYY-MM-DD"),
    "datetime_parsing": ("日時は ISO 8601 形式で入力してください", "Date-times are ISO 8601"),
    "datetime_from_date_parsing": ("日時は ISO 8601 形式で入力してください", "Date-times are ISO 8601"),
    "string_pattern_mismatch": ("形式が正しくありません", "Wrong format"),
    "extra_forbidden": ("この項目は指定できません", "This field is not allowed"),
    "json_invalid": ("JSON として読み取れません", "Not valid JSON"),
    "uuid_parsing": ("ID の形式が正しくありません", "Not a valid id"),
    "value_error": ("{reason}", "{reason}"),
    "assertion_error": ("{reason}", "{reason}"),
}


def _field_error(error: dict[str, Any]) -> FieldError:
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or "body"
    ctx = dict((error.get("ctx") or {}).items())
    error_type = error.get("type", "")
    if error_type in ("value_error", "assertion_error"):
        # Our validators raise "日本語 / English"; split so each language gets its own sentence.
        message = str(ctx.get("error", error.get("msg", "")))
        ja, _, en = message.partition(" / ")
        return FieldError(field, ja.strip(), (en or ja).strip())
    ja_template, en_template = _MESSAGES.get(error_type, ("値が正しくありません", error.get("msg", "Invalid value")))
    try:
        return FieldError(field, ja_template.format(**ctx), en_template.format(**ctx))
    except (KeyError, IndexError):
        return FieldError(field, ja_template, en_template)


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    fields = [_field_error(error) for error in errors]
    names = "、".join(dict.fromkeys(field["field"] for field in fields))
    return ApiError(
        422,
        "validation_error",
        f"入力内容に誤りがあります（{names}）",
        f"Invalid input ({', '.join(dict.fromkeys(field['field'] for field in fields))})",
        fields,
    )


_STATUS_MESSAGES: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "リクエストが正しくありません", "Bad request"),
    401: ("unauthorized", "ログインが必要です", "Authentication required"),
    403: ("forbidden", "この操作を行う権限がありません", "You may not do this"),
    404: ("not_found", "見つかりません", "Not found"),
    405: ("method_not_allowed", "この操作には対応していません", "Method not allowed"),
    409: ("conflict", "他の変更と競合しました", "Conflict"),
    413: ("too_large", "送信データが大きすぎます", "Request body too large"),
    415: ("unsupported_media_type", "JSON で送信してください", "Send JSON"),
    429: ("too_many_requests", "リクエストが多すぎます。しばらく待ってから再度お試しください", "Too many requests"),
}


def allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (RFC 9110's Allow on a 405). Starlette names only the
    first route whose path matched, so a path served by a GET route and a POST route would list one."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})  # no method matches: path only
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)

    # A request body or parameter that fails validation, or a model built inside a route from path or
    # query values: either way it is the caller's input.
    @app.exception_handler(RequestValidationError)
    @app.exception_handler(ValidationError)
    async def _validation(_request: Request, error: RequestValidationError | ValidationError) -> JSONResponse:
        api_error = validation_error(list(error.errors()))
        return JSONResponse(api_error.body(), status_code=api_error.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code, ja, en = _STATUS_MESSAGES.get(error.status_code, ("error", "エラーが発生しました", "Error"))
        detail = error.detail if isinstance(error.detail, str) and error.detail not in (en, "Not Found") else None
        body = ApiError(error.status_code, code, ja, detail or en).body()
        headers = getattr(error, "headers", None)
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return JSONResponse(body, status_code=error.status_code, headers=headers)

    @app.exception_handler(DataError)
    async def _data(_request: Request, error: DataError) -> JSONResponse:
        # The database refused a value validation let through (an out-of-range number, an odd character):
        # the transaction was rolled back, so this is the caller's input, not a crash.
        log.warning("database refused a value", extra={"error": str(error.orig)[:300]})
        body = ApiError(
            422, "invalid_data", "保存できない値が含まれています", "The input contains a value that cannot be stored"
        ).body()
        return JSONResponse(body, status_code=422)

    # The database went away (restart, failover, dropped connection, full pool): a 503 with Retry-After, not a
    # 500, and the service recovers by itself (pool_pre_ping replaces the broken connections). Any other
    # database error (a constraint, a bug) is still the 500 below.
    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    async def _database(request: Request, error: Exception) -> JSONResponse:
        if not is_database_unavailable(error):
            return await _unexpected(request, error)
        log.warning("database unavailable", extra={"error": str(error).splitlines()[0][:300]})
        api_error = database_unavailable()
        return JSONResponse(api_error.body(), status_code=503, headers=api_error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=error)
        body = ApiError(
            500, "internal_error", "システムエラーが発生しました。時間をおいて再度お試しください", "Internal error"
        ).body()
        return JSONResponse(body, status_code=500)

"""Errors of the web UI as pages a person understands (Japanese first, English beside), instead of the
JSON the API answers: the same exception handlers, but a request for a screen (any path outside the API,
the docs and the probes) gets ``error.html``; a page that needs a signed-in person, or a session that
expired, sends the browser to /login and back afterwards. API paths keep their JSON answers unchanged."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.web.pages import LoginRequired, templates
from tsunagu.db import is_database_unavailable
from tsunagu.errors import ApiError, allowed_methods, database_unavailable, validation_error

log = logging.getLogger(__name__)
NOT_WEB = ("/api/", "/docs", "/redoc", "/openapi.json", "/healthz", "/readyz", "/static/")

_TITLES = {
    400: "リクエストを処理できませんでした",
    401: "ログインが必要です",
    403: "このページは表示できません",
    404: "ページが見つかりません",
    405: "この操作には対応していません",
    409: "操作を反映できませんでした",
    413: "送信データが大きすぎます",
    422: "入力内容に誤りがあります",
    429: "操作が多すぎます",
    503: "サービスに接続できません",
    504: "処理に時間がかかっています",
}


def is_web(request: Request) -> bool:
    return not request.url.path.startswith(NOT_WEB)


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    # The cookies stay: /login resumes the session with the refresh cookie when it still can (resume.js).
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, error: ApiError) -> Response:
    if error.status_code == 401:
        return _login_redirect(request)
    context = {
        "status": error.status_code,
        "title": _TITLES.get(error.status_code, "エラーが発生しました"),
        "message_ja": error.message_ja,
        "message_en": error.message_en,
        "fields": error.fields,
        "caller": None,
        "role": "anonymous",
        "unread": 0,
        "path": request.url.path,
        "flash": "",
        "csrf_token": "",
        "csrf_field": "csrf_token",
    }
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return templates.TemplateResponse(request, "error.html", context, status_code=error.status_code, headers=headers)


def install(app: FastAPI) -> None:
    """Wrap the app's handlers: screens get pages, the API keeps its JSON."""
    handlers = dict(app.exception_handlers)

    def wrap(kind: type[Exception], to_error) -> None:
        original = handlers.get(kind)

        async def handle(request: Request, exc: Exception) -> Response:
            if is_web(request):
                return error_page(request, to_error(exc))
            return await original(request, exc)  # type: ignore[misc]

        app.add_exception_handler(kind, handle)

    wrap(ApiError, lambda exc: exc)
    wrap(RequestValidationError, lambda exc: validation_error(list(exc.errors())))
    wrap(ValidationError, lambda exc: validation_error(list(exc.errors())))

    def http_error(exc: StarletteHTTPException) -> ApiError:
        detail = "ページが見つかりません" if exc.status_code == 404 else _TITLES.get(exc.status_code, "エラー")
        # Its headers stay (a 405's Allow, named by the kernel's handler: every method the path takes).
        headers = dict(getattr(exc, "headers", None) or {})
        return ApiError(exc.status_code, "http_error", detail, str(exc.detail), headers=headers or None)

    wrap(StarletteHTTPException, http_error)

    def database_error(exc: Exception) -> ApiError:
        # The gateway's own database away (a restart): the same 503 page as the API's 503, with Retry-After.
        if is_database_unavailable(exc):
            return database_unavailable()
        log.error("database error on a page", exc_info=exc)
        return ApiError(
            500, "internal_error", "システムエラーが発生しました。時間をおいて再度お試しください", "Internal error"
        )

    wrap(DBAPIError, database_error)
    wrap(PoolTimeoutError, database_error)

    async def login_required(request: Request, _exc: Exception) -> Response:
        return _login_redirect(request)

    app.add_exception_handler(LoginRequired, login_required)

    original_unexpected = handlers.get(Exception)

    async def unexpected(request: Request, exc: Exception) -> Response:
        if not is_web(request):
            return await original_unexpected(request, exc)  # type: ignore[misc]
        log.exception("unhandled error on a page", exc_info=exc)
        return error_page(
            request,
            ApiError(
                500,
                "internal_error",
                "システムエラーが発生しました。時間をおいて再度お試しください",
                "Internal error; please try again later",
            ),
        )

    app.add_exception_handler(Exception, unexpected)

"""What every screen needs, as one dependency (``WebDep``): who is calling (the gateway's ``CallerDep``),
the calls to the services on their behalf (``Upstream``), the CSRF token of their forms, the one-time
message after an action (a short-lived cookie, since every form answers with a redirect: reload-safe),
and rendering a template with the page's landmarks and navigation.

Rules about who may open which page are here (``require``); what a person may do with which object stays
with the owning service, which the screens reach only through the public API paths."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote, unquote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from gateway import repository
from gateway.deps import CallerDep, SettingsDep, UpstreamDep
from gateway.settings import GatewaySettings
from gateway.web import TEMPLATES_DIR, csrf
from gateway.web.filters import install_filters
from gateway.web.upstream import Upstream
from tsunagu.auth import Principal, Role
from tsunagu.deps import RuntimeDep
from tsunagu.errors import ApiError

templates = Jinja2Templates(directory=TEMPLATES_DIR)
install_filters(templates.env)
FLASH_COOKIE = "tsunagu_flash"

ROLE_LABELS = {
    "sme": "中小企業",
    "expert": "専門家",
    "broker": "支援機関",
    "hub": "ハブ",
    "admin": "管理者",
    "service": "システム",
    "anonymous": "ゲスト",
}


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in person; the web error handler redirects to /login."""


class Web:
    def __init__(
        self, request: Request, caller: Principal, settings: GatewaySettings, upstream: Upstream, runtime
    ) -> None:
        self.request = request
        self.caller = caller
        self.settings = settings
        self.api = upstream
        self.runtime = runtime
        self.started = time.perf_counter()
        self._csrf_cookie, self._new_cookie = csrf.cookie_value(request)

    # --- who may open the page ---------------------------------------------------------------------
    def require(self, *roles: Role) -> Principal:
        """A signed-in caller of one of ``roles`` (admins pass everywhere); anonymous: to /login."""
        if not self.caller.is_authenticated:
            raise LoginRequired()
        if roles and self.caller.role not in roles and self.caller.role != Role.ADMIN:
            raise ApiError(
                403,
                "forbidden",
                "このページを開く権限がありません（" + "・".join(ROLE_LABELS[r] for r in roles) + "向けのページです）",
                "You may not open this page",
            )
        return self.caller

    # --- forms -------------------------------------------------------------------------------------
    @property
    def csrf_token(self) -> str:
        return csrf.token_for(self.settings, self._csrf_cookie, self.caller)

    async def form(self) -> dict[str, Any]:
        """The posted form, after the CSRF check (403 page otherwise). Repeated names keep every value."""
        data = await self.request.form()
        csrf.check(self.request, self.settings, self.caller, str(data.get(csrf.CSRF_FIELD) or ""))
        values: dict[str, Any] = {}
        for key in data:
            items = data.getlist(key)
            values[key] = items if len(items) > 1 else items[0]
        return values

    # --- answers -----------------------------------------------------------------------------------
    def redirect(self, path: str, message: str | None = None) -> RedirectResponse:
        response = RedirectResponse(path, status_code=303)
        if message:
            response.set_cookie(FLASH_COOKIE, quote(message), max_age=60, httponly=True, samesite="lax")
        return response

    def unread(self) -> int:
        if not self.caller.is_authenticated or self.caller.role == Role.SERVICE:
            return 0
        with Session(self.runtime.engine) as session:
            return repository.unread_count(session, self.caller.sub)

    def render(self, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
        flash = unquote(self.request.cookies.get(FLASH_COOKIE, ""))[:500]
        page = {
            "caller": self.caller,
            "role": self.caller.role.value,
            "role_label": ROLE_LABELS.get(self.caller.role.value, ""),
            "csrf_token": self.csrf_token,
            "csrf_field": csrf.CSRF_FIELD,
            "flash": flash,
            "unread": self.unread(),
            "path": self.request.url.path,
            "is_htmx": self.request.headers.get("hx-request") == "true",
        }
        response = templates.TemplateResponse(
            self.request, template, {**page, **(context or {})}, status_code=status_code
        )
        if flash:
            response.delete_cookie(FLASH_COOKIE)
        if self._new_cookie:
            response.set_cookie(
                csrf.CSRF_COOKIE,
                self._csrf_cookie,
                httponly=True,
                samesite="lax",
                secure=self.settings.env == "production",
            )
        response.headers["server-timing"] = f"app;dur={(time.perf_counter() - self.started) * 1000:.1f}"
        response.headers["cache-control"] = "no-store"
        return response


def get_web(
    request: Request, caller: CallerDep, settings: SettingsDep, client: UpstreamDep, runtime: RuntimeDep
) -> Web:
    return Web(request, caller, settings, Upstream(client, settings, caller), runtime)


WebDep = Annotated[Web, Depends(get_web)]

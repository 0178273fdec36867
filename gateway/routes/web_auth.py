"""Sign-in, sign-up and sign-out pages (/login, /register, /logout): the same account rules as
``/api/v1/auth/*`` (``gateway.service``: Argon2, the rate limit on guessing, the session cookie), with the
form kept and the field at fault marked when something is wrong. /login also lists each configured OIDC
provider (``/auth/oidc/{provider}/login``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session

from gateway import service
from gateway.schemas import RegisterBody, SessionTokens
from gateway.security import clear_session_cookies, current_session_id, set_session_cookies
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role
from tsunagu.errors import ApiError, validation_error

router = APIRouter(include_in_schema=False)

HOME_OF = {
    Role.SME: "/requests",
    Role.EXPERT: "/me/proposals",
    Role.BROKER: "/broker",
    Role.HUB: "/hub",
    Role.ADMIN: "/admin",
}


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site (never //host or a scheme): no open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def oidc_providers(settings) -> list[dict[str, str]]:
    """The configured OIDC providers (issue 9's settings), as (name, label) for the buttons."""
    configured = getattr(settings, "oidc_providers", None) or {}
    if isinstance(configured, dict):
        items = configured.items()
    else:
        items = ((getattr(p, "name", str(p)), p) for p in configured)
    providers = []
    for name, provider in items:
        label = getattr(provider, "label", None) or (provider.get("label") if isinstance(provider, dict) else None)
        providers.append({"name": str(name), "label": str(label or name)})
    return providers


def _client(web: Web) -> str:
    return web.request.client.host if web.request.client else "unknown"


def _signed_in(web: Web, name: str, tokens: SessionTokens, target: str) -> RedirectResponse:
    response = web.redirect(target, f"{name}さん、ログインしました")
    set_session_cookies(response, tokens, web.settings)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(web: WebDep, next: Annotated[str | None, Query(max_length=500)] = None) -> HTMLResponse:
    return web.render(
        "login.html",
        {"values": {"next": _safe_next(next) or ""}, "errors": {}, "providers": oidc_providers(web.settings)},
    )


@router.post("/login", response_class=HTMLResponse)
async def login(web: WebDep):
    form = await web.form()
    email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
    values = {"email": email, "next": _safe_next(str(form.get("next", ""))) or ""}
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = "メールアドレスを入力してください"
    if not password:
        errors["password"] = "パスワードを入力してください"  # noqa: S105 - a message, not a secret
    if not errors:
        agent = web.request.headers.get("user-agent", "")
        try:
            with Session(web.runtime.engine) as session:
                user, tokens = service.sign_in(session, email, password, _client(web), web.settings, user_agent=agent)
                session.commit()
                name, role = user.display_name, Role(user.role)
        except ApiError as error:
            errors["form"] = error.message_ja
            if error.status_code == 401:
                errors["email"] = "メールアドレスかパスワードが違います"
        else:
            return _signed_in(web, name, tokens, values["next"] or HOME_OF.get(role, "/"))
    return web.render(
        "login.html", {"values": values, "errors": errors, "providers": oidc_providers(web.settings)}, status_code=400
    )


@router.get("/register", response_class=HTMLResponse)
async def register_page(web: WebDep) -> HTMLResponse:
    return web.render("register.html", {"values": {"role": "sme"}, "errors": {}})


@router.post("/register", response_class=HTMLResponse)
async def register(web: WebDep):
    form = await web.form()
    values = {key: str(form.get(key, "")).strip() for key in ("email", "display_name", "role")}
    errors: dict[str, str] = {}
    password = str(form.get("password", ""))
    if password != str(form.get("password_confirm", "")):
        errors["password_confirm"] = "確認用のパスワードが一致しません"  # noqa: S105 - a message
    try:
        body = RegisterBody(
            email=values["email"], password=password, display_name=values["display_name"], role=values["role"]
        )
    except ValidationError as error:
        for reason in validation_error(list(error.errors())).fields:
            errors.setdefault(reason["field"].split(".")[0], reason["message_ja"])
    if errors:
        return web.render("register.html", {"values": values, "errors": errors}, status_code=400)
    with Session(web.runtime.engine) as session:
        try:
            user = service.register(session, body, settings=web.settings, client_ip=_client(web))
            agent = web.request.headers.get("user-agent", "")
            tokens = service.start_session(session, user, web.settings, client_ip=_client(web), user_agent=agent)
        except ApiError as error:
            session.rollback()
            for reason in error.fields:
                errors[reason["field"]] = error.message_ja
            errors.setdefault("form", error.message_ja)
            return web.render("register.html", {"values": values, "errors": errors}, status_code=error.status_code)
        session.commit()
        target = "/requests/new" if user.role == "sme" else "/me/profile"
        return _signed_in(web, user.display_name, tokens, target)


@router.post("/logout")
async def logout(web: WebDep) -> RedirectResponse:
    await web.form()
    with Session(web.runtime.engine) as session:
        service.sign_out(session, session_id=current_session_id(web.request), client_ip=_client(web))
        session.commit()
    response = web.redirect("/login", "ログアウトしました")
    clear_session_cookies(response)
    return response


@router.get("/logout")
async def logout_page(web: WebDep) -> HTMLResponse:
    """A link to /logout shows a button (signing out is a state change: a post with the form's token)."""
    return web.render("logout.html")

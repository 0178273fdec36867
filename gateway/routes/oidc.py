"""Sign-in through a configured OpenID Connect provider (``gateway.oidc`` holds the rules): the browser goes
to ``/auth/oidc/{provider}/login?next=/page``, signs in at the provider, comes back to
``/auth/oidc/{provider}/callback``, and ends on the page it came from with the session cookies set.
``/api/v1/auth/oidc/providers`` lists the providers for a sign-in page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from gateway import oidc
from gateway.deps import SettingsDep
from gateway.security import set_session_cookies
from gateway.settings import OIDC_COOKIE_PATH, OIDC_STATE_COOKIE
from tsunagu.deps import SessionDep
from tsunagu.errors import ApiError

router = APIRouter(tags=["auth"])

ProviderName = Annotated[str, Path(max_length=50, pattern=r"^[A-Za-z0-9_-]+$")]


class OidcProviderRead(BaseModel):
    name: str
    label: str
    login_url: str  # the path that starts the sign-in (add ?next=/page to come back there)


@router.get("/api/v1/auth/oidc/providers")
def providers(settings: SettingsDep) -> list[OidcProviderRead]:
    """The configured sign-in providers, for the buttons of a sign-in page (the whole, short list)."""
    return [
        OidcProviderRead(name=name, label=provider.label or name, login_url=f"/auth/oidc/{name}/login")
        for name, provider in settings.oidc_providers.items()
    ]


# The two browser steps answer an error with a page (gateway.web.errors), not the API's JSON.
_PAGE = {"content": {"text/html": {"schema": {"type": "string"}}}}
BROWSER_ERRORS: dict[int | str, dict] = {
    "4XX": {"description": "エラーページ / An error page (unknown provider, expired or forged state)", **_PAGE},
    "503": {"description": "プロバイダに接続できません / The provider cannot be reached", **_PAGE},
    # A control character in the query is refused before any route, in the API's JSON (tsunagu.service).
    "422": {
        "description": "入力内容に誤りがあります / Invalid input",
        "content": {**_PAGE["content"], "application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
    },
}


@router.get("/auth/oidc/{provider}/login", response_class=RedirectResponse, status_code=302, responses=BROWSER_ERRORS)
async def login(
    provider: ProviderName,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> RedirectResponse:
    """Send the browser to the provider (authorization code with PKCE, state and nonce)."""
    authorization = await oidc.begin(settings, provider, next)

    def store() -> None:
        oidc.store_login(session, settings, authorization.login, request.client.host if request.client else "unknown")
        session.commit()

    await run_in_threadpool(store)
    response = RedirectResponse(authorization.url, status_code=302)
    response.set_cookie(
        OIDC_STATE_COOKIE,
        authorization.login.state,
        max_age=int(oidc.LOGIN_VALID_FOR.total_seconds()),
        path=OIDC_COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back, never on a cross-site post
        secure=settings.env == "production",
    )
    return response


@router.get(
    "/auth/oidc/{provider}/callback", response_class=RedirectResponse, status_code=303, responses=BROWSER_ERRORS
)
async def callback(
    provider: ProviderName,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> RedirectResponse:
    """Finish the sign-in: the state must match this browser's cookie and a pending login (used up now),
    the code is exchanged with the PKCE verifier, the ID token verified (signature, issuer, audience,
    expiry, nonce); then the session cookies are set and the browser goes back where it started."""
    cookie_state = request.cookies.get(OIDC_STATE_COOKIE)

    def take():
        login = oidc.take_login(session, provider, state, cookie_state)
        session.commit()  # used up even if what follows fails: a state works once
        return login

    pending = await run_in_threadpool(take)
    if error or not code:
        raise ApiError(
            400,
            "oidc_denied",
            "連携先でログインが完了しませんでした",
            f"The provider did not complete the sign-in ({error or 'no code'})",
        )
    claims = await oidc.exchange(settings, pending, code)
    client_ip = request.client.host if request.client else "unknown"

    def finish():
        result = oidc.sign_in(
            session, settings, pending, claims, client_ip=client_ip, user_agent=request.headers.get("user-agent", "")
        )
        session.commit()
        return result

    _user, tokens = await run_in_threadpool(finish)
    response = RedirectResponse(pending.return_to, status_code=303)
    set_session_cookies(response, tokens, settings)
    response.delete_cookie(OIDC_STATE_COOKIE, path=OIDC_COOKIE_PATH, httponly=True, samesite="lax")
    return response

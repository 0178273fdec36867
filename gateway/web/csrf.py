"""Cross-site request forgery protection for every form of the web UI (a signed double-submit token
bound to the session).

The browser holds a random value in the cookie ``tsunagu_csrf`` (HttpOnly, SameSite=Lax). Every page
embeds ``token = HMAC(secret, cookie value | signed-in user)`` in its forms (and in htmx's request
headers); a state-changing request is accepted only when the token it carries is the one its own cookie
and its own session give. Another site can make the browser send the cookie but can neither read it nor
compute the HMAC without the gateway's secret, and a token taken from one person's page is worthless
with another person's session (OWASP's "signed double-submit cookie"). Signing in changes the user part,
so a token from before sign-in does not work after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request

from gateway.settings import GatewaySettings
from tsunagu.auth import Principal
from tsunagu.errors import ApiError

CSRF_COOKIE = "tsunagu_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def cookie_value(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie value, or a new one (True: the response must set it)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if len(value) == 43 and value.replace("-", "").replace("_", "").isalnum():
        return value, False
    return secrets.token_urlsafe(32), True


def token_for(settings: GatewaySettings, cookie: str, caller: Principal) -> str:
    message = f"csrf|{cookie}|{caller.sub if caller.is_authenticated else ''}".encode()
    return hmac.new(settings.token_secret.encode(), message, hashlib.sha256).hexdigest()


def refused() -> ApiError:
    return ApiError(
        403,
        "csrf_failed",
        "フォームの送信を確認できませんでした。ページを読み込み直してから、もう一度送信してください"
        "（別のサイトからの送信や、時間が経ったページからの送信は受け付けません）",
        "The form could not be verified: reload the page and send it again "
        "(posts from other sites or stale pages are refused)",
    )


def check(request: Request, settings: GatewaySettings, caller: Principal, sent: str | None) -> None:
    """Refuse (403) a state-changing request whose token does not match its cookie and session."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    token = sent or request.headers.get(CSRF_HEADER, "")
    if not cookie or not token:
        raise refused()
    if not hmac.compare_digest(token.encode(), token_for(settings, cookie, caller).encode()):
        raise refused()

"""/notifications: what the signed-in person was told (unread first), each with the page to open; mark
one or all read. The gateway owns notifications, so this reads its own database (``gateway.notifications``)
with the same owner-only rule as ``/api/v1/notifications``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session

from gateway import notifications, repository
from gateway.web.pages import WebDep
from tsunagu.db import utcnow

router = APIRouter(include_in_schema=False)


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(web: WebDep, offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> HTMLResponse:
    caller = web.require()
    with Session(web.runtime.engine) as session:
        page = notifications.list_for(session, caller.sub, limit=50, offset=offset)
    return web.render("notifications.html", {"page": page, "offset": offset})


@router.post("/notifications/{notification_id}/read")
async def read_one(web: WebDep, notification_id: Annotated[str, Path(max_length=64)]) -> RedirectResponse:
    caller = web.require()
    form = await web.form()
    with Session(web.runtime.engine) as session:
        notification = notifications.mark_read(session, caller.sub, notification_id, utcnow())
        link = notification.link
        session.commit()
    target = link if str(form.get("open", "")) == "1" and link.startswith("/") else "/notifications"
    return web.redirect(target)


@router.post("/notifications/read-all")
async def read_all(web: WebDep) -> RedirectResponse:
    caller = web.require()
    await web.form()
    with Session(web.runtime.engine) as session:
        marked = repository.mark_all_read(session, caller.sub, utcnow())
        session.commit()
    return web.redirect("/notifications", f"{marked}件を既読にしました")

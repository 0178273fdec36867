"""The caller's notifications (issue 8): what the brokering workflow and the freshness reminders told
them. Everyone reads and marks only their own; another person's notification is a 404 (it shows nothing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway import notifications, repository
from gateway.deps import CurrentUserDep
from gateway.schemas import NotificationPage, NotificationRead, ReadAllResult
from tsunagu.db import utcnow
from tsunagu.deps import PageDep, SessionDep

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("")
def list_notifications(session: SessionDep, user: CurrentUserDep, page: PageDep) -> NotificationPage:
    """Unread first, then newest first; ``unread`` counts every unread one."""
    return notifications.list_for(session, user.sub, limit=page.limit, offset=page.offset)


@router.post("/read-all")
def read_all(session: SessionDep, user: CurrentUserDep) -> ReadAllResult:
    marked = repository.mark_all_read(session, user.sub, utcnow())
    session.commit()
    return ReadAllResult(marked_read=marked)


@router.post("/{notification_id}/read")
def read_one(
    notification_id: Annotated[str, Path(max_length=64)], session: SessionDep, user: CurrentUserDep
) -> NotificationRead:
    notification = notifications.mark_read(session, user.sub, notification_id, utcnow())
    session.commit()
    return notifications.to_read(notification)

"""HTTP routes for 相談会 (consultation days, issue 11): a broker creates a day and solves its plan, SMEs
register, everyone concerned reads their meetings and takes the schedule as iCalendar or CSV (thin: rules
in service.py, the solver in assignment.py, file formats in schedule.py; the route commits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from services.matching import service
from services.matching.schedule import to_csv, to_ics
from services.matching.schemas import (
    AssignmentCreate,
    AssignmentRead,
    SessionCreate,
    SessionRead,
    SessionRegistrationCreate,
    SessionRegistrationRead,
)
from tsunagu.deps import BrokerDep, PageDep, SessionDep, UserDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/sessions", tags=["sessions"])

IdQuery = Annotated[str | None, Query(min_length=1, max_length=64)]


@router.post("", status_code=201)
def create(body: SessionCreate, session: SessionDep, caller: BrokerDep) -> SessionRead:
    """A broker whose prefectures include the venue: the day, its slots and the invited experts."""
    consultation = service.create_consultation(session, caller, body)
    session.commit()
    return service.consultation_read(session, caller, consultation)


@router.get("")
def list_sessions(session: SessionDep, caller: UserDep, page: PageDep) -> Page[SessionRead]:
    rows, total = service.list_consultations(session, caller, page)
    return Page(
        items=[service.consultation_read(session, caller, row) for row in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{session_id}")
def read(session_id: str, session: SessionDep, caller: UserDep) -> SessionRead:
    return service.consultation_read(session, caller, service.readable_consultation(session, caller, session_id))


@router.post("/{session_id}/registrations", status_code=201)
def register(
    session_id: str, body: SessionRegistrationCreate, session: SessionDep, caller: UserDep
) -> SessionRegistrationRead:
    """An SME registers (on site) with topics and/or the self-diagnosis answers."""
    registration = service.register_for_consultation(session, caller, session_id, body)
    session.commit()
    return service.registration_read(registration)


@router.post("/{session_id}/assignment")
def solve(
    session_id: str, session: SessionDep, caller: UserDep, body: AssignmentCreate | None = None
) -> AssignmentRead:
    """Solve the day's plan optimally (the broker); published unless ``{"publish": false}``."""
    answer = service.solve_consultation(session, caller, session_id, publish=body.publish if body else True)
    session.commit()
    return answer


@router.get("/{session_id}/assignment")
def published(session_id: str, session: SessionDep, caller: UserDep) -> AssignmentRead:
    return service.published_plan(session, caller, session_id)


_FILE_RESPONSES = {200: {"content": {"text/calendar": {}, "text/csv": {}}, "description": "the schedule file"}}


@router.get("/{session_id}/schedule.ics", response_class=Response, responses=_FILE_RESPONSES)
def schedule_ics(
    session_id: str, session: SessionDep, caller: UserDep, expert_id: IdQuery = None, registration_id: IdQuery = None
) -> Response:
    """The whole day (staff), one expert or one SME; a reader sees only the meetings they may."""
    consultation, meetings = service.schedule_rows(
        session, caller, session_id, expert_id=expert_id, registration_id=registration_id
    )
    return Response(
        to_ics(consultation, meetings),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="session-{consultation.id}.ics"'},
    )


@router.get("/{session_id}/schedule.csv", response_class=Response, responses=_FILE_RESPONSES)
def schedule_csv(
    session_id: str, session: SessionDep, caller: UserDep, expert_id: IdQuery = None, registration_id: IdQuery = None
) -> Response:
    _consultation, meetings = service.schedule_rows(
        session, caller, session_id, expert_id=expert_id, registration_id=registration_id
    )
    return Response(
        to_csv(meetings),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="session-{session_id}.csv"'},
    )

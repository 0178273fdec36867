"""HTTP routes for マナビDX Quest hub projects (issue 11): hub staff create projects and form and confirm
teams, learners state interest, hub staff and brokers of the region read them (thin: rules in service.py,
the solver in assignment.py; the route commits)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.matching import service
from services.matching.schemas import InterestCreate, ProjectCreate, ProjectRead, TeamsCreate, TeamsRead
from tsunagu.deps import PageDep, SessionDep, UserDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/projects", tags=["hub projects"])


@router.post("", status_code=201)
def create(body: ProjectCreate, session: SessionDep, caller: UserDep) -> ProjectRead:
    """Hub staff of the project's prefecture: the SME's DX problem, the roles and levels it needs."""
    project = service.create_project(session, caller, body)
    session.commit()
    return service.project_reads(session, caller, [project])[0]


@router.get("")
def list_projects(
    session: SessionDep,
    caller: UserDep,
    page: PageDep,
    cohort: Annotated[str | None, Query(max_length=20)] = None,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> Page[ProjectRead]:
    rows, total = service.list_projects(session, caller, page, cohort=cohort, state=state)
    return Page(items=service.project_reads(session, caller, rows), total=total, limit=page.limit, offset=page.offset)


@router.post("/teams")
def form_teams(body: TeamsCreate, session: SessionDep, caller: UserDep) -> TeamsRead:
    """Teams for some projects or a whole cohort at once, solved optimally; each member with their reason."""
    answer = service.form_teams(session, caller, body)
    session.commit()
    return answer


@router.get("/{project_id}")
def read(project_id: str, session: SessionDep, caller: UserDep) -> ProjectRead:
    return service.project_reads(session, caller, [service.readable_project(session, caller, project_id)])[0]


@router.post("/{project_id}/interests", status_code=201)
def state_interest(
    project_id: str, session: SessionDep, caller: UserDep, body: InterestCreate | None = None
) -> ProjectRead:
    """A learner (DX人材 who finished the case study) states interest; it counts in the team objective."""
    service.add_interest(session, caller, project_id, body or InterestCreate())
    session.commit()
    return service.project_reads(session, caller, [service.readable_project(session, caller, project_id)])[0]


@router.post("/{project_id}/team/confirm")
def confirm(project_id: str, session: SessionDep, caller: UserDep) -> ProjectRead:
    """Fix the proposed team; its members are told (matching.project.team_confirmed)."""
    project = service.confirm_team(session, caller, project_id)
    session.commit()
    return service.project_reads(session, caller, [project])[0]

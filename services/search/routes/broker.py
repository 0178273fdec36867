"""Search of SME requests and hub projects: brokers and hub staff (and admins), within the prefectures they
cover (the service limits the engine query to them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.search import service
from services.search.deps import ProjectIndexDep, RequestIndexDep
from services.search.schemas import (
    ProjectHit,
    ProjectSearchParams,
    RequestHit,
    RequestSearchParams,
    SearchPage,
)
from tsunagu.deps import RegionalStaffDep

router = APIRouter(prefix="/search", tags=["search"])


@router.get("/requests")
def search_requests(
    params: Annotated[RequestSearchParams, Query()], engine: RequestIndexDep, caller: RegionalStaffDep
) -> SearchPage[RequestHit]:
    return service.search_requests(engine, caller, params)


@router.get("/projects")
def search_projects(
    params: Annotated[ProjectSearchParams, Query()], engine: ProjectIndexDep, caller: RegionalStaffDep
) -> SearchPage[ProjectHit]:
    return service.search_projects(engine, caller, params)

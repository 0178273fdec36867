"""/admin/search-sources: what the search service's requests and projects indexes should hold, a page at a
time in id order, for ``tsunagu search reindex`` (which rebuilds the indexes from the owning services' APIs,
never their tables). Admins only; the data is what the events carry for the index, no people."""

from __future__ import annotations

from fastapi import APIRouter

from services.matching import service
from services.matching.schemas import ProjectSearchSource, RequestSearchSource
from tsunagu.deps import AdminDep, PageDep, SessionDep
from tsunagu.pagination import Page

router = APIRouter(prefix="/admin/search-sources", tags=["admin"])


@router.get("/requests", response_model=Page[RequestSearchSource])
def request_sources(session: SessionDep, _admin: AdminDep, page: PageDep) -> Page[RequestSearchSource]:
    """Every request past its draft: its indexed fields and version."""
    return service.request_search_sources(session, page)


@router.get("/projects", response_model=Page[ProjectSearchSource])
def project_sources(session: SessionDep, _admin: AdminDep, page: PageDep) -> Page[ProjectSearchSource]:
    """Every hub project: its indexed fields and version."""
    return service.project_search_sources(session, page)

"""The search engines as dependency types: a route names ``engine: SearchEngineDep`` (experts),
``RequestIndexDep`` or ``ProjectIndexDep`` instead of reaching into ``request.app.state``. app.py puts the
process's engines on ``app.state.search_engines`` (by index name)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.search.engine import SearchEngine


def get_search_engine(request: Request) -> SearchEngine:
    return request.app.state.search_engines["experts"]


def get_request_index(request: Request) -> SearchEngine:
    return request.app.state.search_engines["requests"]


def get_project_index(request: Request) -> SearchEngine:
    return request.app.state.search_engines["projects"]


SearchEngineDep = Annotated[SearchEngine, Depends(get_search_engine)]
RequestIndexDep = Annotated[SearchEngine, Depends(get_request_index)]
ProjectIndexDep = Annotated[SearchEngine, Depends(get_project_index)]

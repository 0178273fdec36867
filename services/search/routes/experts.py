"""Public expert search and suggestions (anyone, signed in or not: the index only holds public fields)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.search import service
from services.search.deps import SearchEngineDep
from services.search.schemas import ExpertHit, ExpertSearchParams, SearchPage, SuggestionRead, SuggestParams

router = APIRouter(prefix="/search", tags=["search"])


@router.get("/experts")
def search_experts(params: Annotated[ExpertSearchParams, Query()], engine: SearchEngineDep) -> SearchPage[ExpertHit]:
    return service.search_experts(engine, params)


@router.get("/suggest")
def suggest(params: Annotated[SuggestParams, Query()], engine: SearchEngineDep) -> list[SuggestionRead]:
    """Prefix suggestions for names (also by reading), skills and topics of active experts."""
    return service.suggest(engine, params)

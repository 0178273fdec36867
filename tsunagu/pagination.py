"""One page shape for every list in every service: ``Page[T]`` with the total, so the OpenAPI of each
list says what its items are and a client pages the same way everywhere."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 100
MAX_OFFSET = 100_000


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class PageParams(BaseModel):
    limit: int = 20
    offset: int = 0


async def page_params(  # async: no worker thread for reading two numbers (tsunagu/deps.py)
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)

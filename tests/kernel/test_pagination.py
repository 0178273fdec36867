"""tsunagu/pagination.py: one page shape and one set of paging parameters."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tsunagu.pagination import MAX_LIMIT, MAX_OFFSET, Page, PageParams, page_params


class Item(BaseModel):
    id: int


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    def items(page: PageParams = Depends(page_params)) -> Page[Item]:
        return Page[Item](
            items=[Item(id=i) for i in range(page.offset, page.offset + page.limit)],
            total=1000,
            limit=page.limit,
            offset=page.offset,
        )

    return app


def test_a_page_carries_its_items_total_and_paging() -> None:
    client = TestClient(_app())
    assert client.get("/items", params={"limit": 2, "offset": 3}).json() == {
        "items": [{"id": 3}, {"id": 4}],
        "total": 1000,
        "limit": 2,
        "offset": 3,
    }
    default = client.get("/items").json()
    assert (default["limit"], default["offset"], len(default["items"])) == (20, 0, 20)


def test_paging_parameters_are_bounded() -> None:
    client = TestClient(_app())
    for params in ({"limit": 0}, {"limit": MAX_LIMIT + 1}, {"offset": -1}, {"offset": MAX_OFFSET + 1}):
        assert client.get("/items", params=params).status_code == 422, params
    assert client.get("/items", params={"limit": MAX_LIMIT, "offset": MAX_OFFSET}).status_code == 200


def test_the_openapi_names_the_item_type() -> None:
    schema = _app().openapi()
    response = schema["paths"]["/items"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schema["components"]["schemas"][response["$ref"].rsplit("/", 1)[1]]
    assert page["properties"]["items"]["items"]["$ref"].endswith("/Item")
    assert set(page["required"]) == {"items", "total", "limit", "offset"}

"""tsunagu/service.py: the request middleware (request ids, control characters in the URL)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.kernel.conftest import make_app


def test_request_id_is_echoed_or_made() -> None:
    client = TestClient(make_app())
    assert client.get("/nowhere", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert len(client.get("/nowhere").headers["x-request-id"]) == 36


def test_control_characters_in_the_url_get_a_422_naming_where() -> None:
    client = TestClient(make_app())
    response = client.get("/nowhere", params={"q": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query"
    assert client.get("/items%00").status_code == 422
    body = client.post("/items", json={"name": "a\u0000", "count": 1})
    assert body.status_code == 422 and body.json()["error"]["fields"][0]["field"] == "name"

"""tsunagu/errors.py: bilingual 4xx that name the field, and a 500 that shows nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.kernel.conftest import Body, make_app


def test_validation_errors_are_bilingual_and_name_the_field() -> None:
    client = TestClient(make_app())
    response = client.post("/items", json={"name": "toolongname"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    fields = {f["field"]: f for f in error["fields"]}
    assert fields["name"]["message_ja"] == "5文字以内で入力してください"
    assert fields["name"]["message_en"] == "At most 5 characters"
    assert fields["count"]["message_ja"] == "必須項目です"
    assert "入力内容に誤りがあります" in error["message_ja"]


def test_wrong_type_and_oversized_body_and_unexpected_error() -> None:
    client = TestClient(make_app(), raise_server_exceptions=False)
    wrong = client.post("/items", json={"name": "a", "count": "many"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"][0]["message_ja"] == "整数で入力してください"
    big = client.post("/items", content=b"{" + b" " * 200 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413
    assert big.json()["error"]["message_ja"] == "送信データが大きすぎます"
    boom = client.get("/boom")
    assert boom.status_code == 500 and boom.json()["error"]["code"] == "internal_error"
    assert client.get("/nowhere").json()["error"]["message_ja"] == "見つかりません"


def test_a_model_built_inside_a_route_reports_a_422() -> None:
    app = make_app()

    @app.get("/members/{user_id}")
    def member(user_id: str) -> dict:
        return Body(name=user_id, count=1).model_dump()

    response = TestClient(app).get("/members/" + "x" * 10)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "name"

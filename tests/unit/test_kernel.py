"""The shared kernel: envelope, tokens, settings, bilingual errors."""

from __future__ import annotations

import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import Field, ValidationError

from tsunagu.auth import ISSUER, Principal, Role, issue_token, verify_token
from tsunagu.errors import ApiError, install_error_handlers
from tsunagu.events import EventEnvelope
from tsunagu.service import RequestContextMiddleware
from tsunagu.settings import DEVELOPMENT_TOKEN_SECRET, KernelSettings
from tsunagu.validation import InputModel

SECRET = "unit-test-secret-0123456789-0123456789"


def test_envelope_round_trip_keeps_every_field() -> None:
    envelope = EventEnvelope(type="profiles.expert.upserted", source="profiles", subject_id="e1", entity_version=3, data={"a": 1})
    again = EventEnvelope.from_json(envelope.to_json())
    assert again == envelope
    assert len(envelope.id) == 36


def test_envelope_refuses_unknown_fields_and_negative_versions() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope.model_validate({"type": "x", "source": "s", "subject_id": "1", "entity_version": 1, "data": {}, "extra": 1})
    with pytest.raises(ValidationError):
        EventEnvelope(type="x", source="s", subject_id="1", entity_version=-1, data={})


def test_token_verifies_for_its_audience_only() -> None:
    principal = Principal(sub="u1", role=Role.BROKER, prefectures=["13"])
    token = issue_token(principal, secret=SECRET, audience="matching")
    assert verify_token(token, secret=SECRET, audience="matching") == principal
    with pytest.raises(ApiError) as refused:
        verify_token(token, secret=SECRET, audience="profiles")
    assert refused.value.status_code == 401


def test_token_with_wrong_secret_expired_or_other_algorithm_is_refused() -> None:
    principal = Principal(sub="u1", role=Role.ADMIN)
    with pytest.raises(ApiError):
        verify_token(issue_token(principal, secret="another-secret-0123456789-0123456789", audience="a"), secret=SECRET, audience="a")
    expired = issue_token(principal, secret=SECRET, audience="a", ttl_seconds=-10)
    with pytest.raises(ApiError):
        verify_token(expired, secret=SECRET, audience="a")
    # The same claims signed with HS512: the pinned algorithm refuses it even with the right key.
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "a", "exp": now + 60, "sub": "u1", "role": "admin"}
    other = jwt.encode({"alg": "HS512"}, claims, OctKey.import_key(SECRET.encode()), algorithms=["HS512"])
    with pytest.raises(ApiError):
        verify_token(other, secret=SECRET, audience="a")
    # An unsigned token ("alg": "none") is refused too.
    import base64
    import json

    def b64(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    with pytest.raises(ApiError):
        verify_token(f"{b64({'alg': 'none'})}.{b64(claims)}.", secret=SECRET, audience="a")


def test_production_refuses_the_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_ENV", "production")
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", DEVELOPMENT_TOKEN_SECRET)
    with pytest.raises(ValidationError, match="TSUNAGU_TOKEN_SECRET"):
        KernelSettings()
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", "short")
    with pytest.raises(ValidationError):
        KernelSettings()
    monkeypatch.setenv("TSUNAGU_TOKEN_SECRET", "a-real-production-secret-with-enough-length")
    assert KernelSettings().env == "production"


class _Body(InputModel):
    name: str = Field(max_length=5)
    count: int


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestContextMiddleware, max_body_bytes=100)
    install_error_handlers(app)

    @app.post("/items")
    def create(body: _Body) -> dict:
        return body.model_dump()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    return app


def test_validation_errors_are_bilingual_and_name_the_field() -> None:
    client = TestClient(_app())
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
    client = TestClient(_app(), raise_server_exceptions=False)
    wrong = client.post("/items", json={"name": "a", "count": "many"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"][0]["message_ja"] == "整数で入力してください"
    big = client.post("/items", content=b"{" + b" " * 200 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413
    assert big.json()["error"]["message_ja"] == "送信データが大きすぎます"
    boom = client.get("/boom")
    assert boom.status_code == 500 and boom.json()["error"]["code"] == "internal_error"
    assert client.get("/nowhere").json()["error"]["message_ja"] == "見つかりません"


def test_request_id_is_echoed_or_made() -> None:
    client = TestClient(_app())
    assert client.get("/nowhere", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert len(client.get("/nowhere").headers["x-request-id"]) == 36


class _Text(InputModel):
    name: str
    tags: list[str] = []
    bio: str = ""


def test_control_characters_and_lone_surrogates_are_refused_field_by_field() -> None:
    assert _Text(name="山田", bio="一行目\n二行目\tタブ").bio.endswith("タブ")
    for bad in ({"name": "a\x00b"}, {"name": "ok", "tags": ["x", "\x1b[31m"]}, {"name": "\udbb4"}):
        with pytest.raises(ValidationError) as refused:
            _Text.model_validate(bad)
        assert "制御文字" in str(refused.value)


def test_control_characters_in_the_url_get_a_422_naming_where() -> None:
    client = TestClient(_app())
    response = client.get("/nowhere", params={"q": "a\x00b"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "query"
    assert client.get("/items%00").status_code == 422
    body = client.post("/items", json={"name": "a\u0000", "count": 1})
    assert body.status_code == 422 and body.json()["error"]["fields"][0]["field"] == "name"


def test_a_model_built_inside_a_route_reports_a_422() -> None:
    app = _app()

    @app.get("/members/{user_id}")
    def member(user_id: str) -> dict:
        return _Body(name=user_id, count=1).model_dump()

    response = TestClient(app).get("/members/" + "x" * 10)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "name"

"""Bad input on every endpoint of the thin path: a 4xx that names the field, in Japanese and English,
and nothing written."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.e2e.helpers import error_fields
from tests.factories import expert_body, request_body

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": None}, "title"),
        ({"prefecture": "火星県"}, "prefecture"),
        ({"topics": "ransomware"}, "topics"),
        ({"topics": ["no_such_topic"]}, "topics"),
        ({"description": "あ" * 4001}, "description"),
        ({"title": "あ" * 201}, "title"),
        ({"delivery": "teleport"}, "delivery"),
        ({"budget_yen_max": "たくさん"}, "budget_yen_max"),
        ({"self_diagnosis": {"26": "no"}}, "self_diagnosis"),
        ({"unexpected": 1}, "unexpected"),
        ({"topics": [], "self_diagnosis": {}}, "topics"),
    ],
)
def test_bad_request_bodies_are_refused_with_the_field(api: Api, change: dict, field: str) -> None:
    sme = api.register("sme")
    body = {k: v for k, v in {**request_body(), **change}.items() if v is not None}
    response = api.http.post("/api/v1/requests", headers=sme, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in error_fields(response)
    assert error["message_ja"] and error["message_en"]
    assert all(f["message_ja"] and f["message_en"] for f in error["fields"])
    assert api.http.get("/api/v1/requests", headers=sme).json()["total"] == 0


def test_not_json_too_large_and_unauthenticated_requests(api: Api) -> None:
    sme = api.register("sme")
    broken = api.http.post("/api/v1/requests", headers={**sme, "content-type": "application/json"}, content=b"{broken")
    assert broken.status_code == 422
    huge = api.http.post("/api/v1/requests", headers=sme, json=request_body(description="x" * 2_000_000))
    assert huge.status_code == 413
    assert huge.json()["error"]["message_ja"] == "送信データが大きすぎます"
    assert api.http.post("/api/v1/requests", json=request_body()).status_code == 401
    expert = api.register("expert")
    assert api.http.post("/api/v1/requests", headers=expert, json=request_body()).status_code == 403
    forged = {"authorization": "Bearer not-a-token"}
    assert api.http.post("/api/v1/requests", headers=forged, json=request_body()).status_code == 401
    assert api.http.get("/api/v1/requests", headers=sme).json()["total"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"registration_number": "12AB"}, "registration_number"),
        ({"prefectures": ["火星県"]}, "prefectures"),
        ({"strengths": [{"topic": "no_such_topic", "depth": 2}]}, "strengths"),
        ({"strengths": [{"topic": "ransomware", "depth": 9}]}, "strengths"),
        ({"name": None}, "name"),
        ({"capacity": "three"}, "capacity"),
        ({"name": "あ" * 500}, "name"),
    ],
)
def test_bad_expert_profiles_are_refused_with_the_field(api: Api, change: dict, field: str) -> None:
    expert = api.register("expert")
    body = {k: v for k, v in {**expert_body(), **change}.items() if v is not None}
    response = api.http.post("/api/v1/experts", headers=expert, json=body)
    assert response.status_code == 422, response.text
    assert any(name == field or name.startswith(field + ".") for name in error_fields(response)), response.text
    assert response.json()["error"]["message_ja"]
    assert api.http.get("/api/v1/experts/me", headers=expert).status_code == 404


def test_bad_search_parameters_and_sign_up(api: Api) -> None:
    response = api.http.get("/api/v1/search/experts", params={"prefecture": "火星県"})
    assert response.status_code == 422 and "prefecture" in error_fields(response)
    response = api.http.get("/api/v1/search/experts", params={"limit": 1000})
    assert response.status_code == 422 and "limit" in error_fields(response)
    response = api.http.post(
        "/api/v1/auth/register", json={"email": "bad", "password": "short", "display_name": "", "role": "admin"}
    )
    assert response.status_code == 422
    assert {"email", "password", "display_name", "role"} <= error_fields(response)
    wrong = api.http.post("/api/v1/auth/token", json={"email": "nobody@example.jp", "password": "whatever-long"})
    assert (
        wrong.status_code == 401
        and wrong.json()["error"]["message_ja"] == "メールアドレスまたはパスワードが正しくありません"
    )


def test_control_characters_anywhere_are_a_422_not_a_crash(api: Api) -> None:
    # PostgreSQL refuses NUL in text and UTF-8 cannot carry lone surrogates: both must be caught as input errors.
    response = api.http.post(
        "/api/v1/auth/register",
        content='{"email": "a\\u0000b@example.jp", "password": "long-enough-pass", "display_name": "x", "role": "sme"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and "email" in error_fields(response)
    sme = api.register("sme")
    surrogate = api.http.post(
        "/api/v1/requests",
        headers={**sme, "content-type": "application/json"},
        content='{"title": "\\udbb4", "prefecture": "13", "topics": ["ransomware"]}',
    )
    assert surrogate.status_code == 422 and "title" in error_fields(surrogate)
    assert api.http.get("/api/v1/requests/abc%00def", headers=sme).status_code == 422
    listed = api.http.get("/api/v1/requests", headers=sme, params={"status": "ranked\x00"})
    assert listed.status_code == 422 and error_fields(listed) == {"query"}
    assert api.http.get("/api/v1/requests", headers=sme).json()["total"] == 0

"""Helpers for end-to-end tests: realistic bodies and waiting on eventual consistency."""

from __future__ import annotations

import itertools
import random
import uuid

import httpx
from sqlmodel import Session

from services.matching.models import ExpertFeature
from tests.conftest import Api, wait_until
from tsunagu.db import make_engine
from tsunagu.runner import System

# Registration numbers of their own: demo data (services.profiles.demo) stays below 500000 for the sizes
# the tests import, and tests/profiles draws from 800000 up, so these never collide with either.
_registration_numbers = itertools.count(random.Random().randrange(500_000, 790_000))


def expert_body(**overrides) -> dict:  # noqa: ANN003
    body = {
        "kind": "sekisupe",
        "registration_number": f"{next(_registration_numbers):06d}",
        "name": "沖縄 太郎",
        "name_kana": "おきなわ たろう",
        "registration_date": "2025-04-01",
        "prefectures": ["47"],
        "onsite": True,
        "remote": True,
        "strengths": [{"topic": "ransomware", "depth": 3}, {"topic": "backup_bcp", "depth": 3}],
        "skills": ["AWS"],
        "capacity": 3,
    }
    body.update(overrides)
    return body


def request_body(**overrides) -> dict:  # noqa: ANN003
    body = {
        "title": "ランサムウェア対策を見直したい",
        "description": "バックアップと復旧手順を見直したいです。",
        "prefecture": "沖縄県",
        "delivery": "either",
        "topics": ["ransomware", "backup_bcp"],
    }
    body.update(overrides)
    return body


def create_expert(api: Api, headers: dict[str, str], **overrides) -> dict:  # noqa: ANN003
    response = api.http.post("/api/v1/experts", headers=headers, json=expert_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def submit_request(api: Api, headers: dict[str, str], **overrides) -> dict:  # noqa: ANN003
    response = api.http.post("/api/v1/requests", headers=headers, json=request_body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def wait_ranked(api: Api, headers: dict[str, str], request_id: str, timeout: float = 60.0) -> dict:
    def ranked() -> dict | None:
        response = api.http.get(f"/api/v1/requests/{request_id}/ranking", headers=headers)
        assert response.status_code == 200, response.text
        return response.json() if response.json()["status"] == "ranked" else None

    return wait_until(ranked, timeout=timeout, message=f"the ranking of request {request_id}")


def wait_searchable(api: Api, query: str, expert_id: str, timeout: float = 60.0) -> dict:
    def found() -> dict | None:
        response = api.http.get("/api/v1/search/experts", params={"q": query})
        assert response.status_code == 200, response.text
        return next((hit for hit in response.json()["items"] if hit["id"] == expert_id), None)

    return wait_until(found, timeout=timeout, message=f"expert {expert_id} in the search index")


def in_projection(system: System, expert_id: str) -> bool:
    """Whether matching has learnt of the expert (its events may trail search's after a bulk import)."""
    engine = make_engine(system.database_url("matching"))
    with Session(engine) as session:
        found = session.get(ExpertFeature, expert_id) is not None
    engine.dispose()
    return found


def unique_name() -> str:
    return "検証" + uuid.uuid4().hex[:6]


def error_fields(response: httpx.Response) -> set[str]:
    return {field["field"] for field in response.json()["error"]["fields"]}

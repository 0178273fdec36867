"""Helpers for end-to-end tests: realistic bodies and waiting on eventual consistency."""

from __future__ import annotations

import time

import httpx
from sqlmodel import Session

from launcher.runner import System
from services.matching.models import ExpertFeature, OrganizationProjection
from tests.conftest import Api, wait_until
from tests.factories import expert_body, organization_body, request_body
from tsunagu.db import make_engine

# The end-to-end expert works in Okinawa, where the end-to-end request is, on both of its topics.
OKINAWA_EXPERT = {
    "name": "沖縄 太郎",
    "name_kana": "おきなわ たろう",
    "registration_date": "2025-04-01",
    "prefectures": ["47"],
    "strengths": [{"topic": "ransomware", "depth": 3}, {"topic": "backup_bcp", "depth": 3}],
}


_admins: dict[int, tuple[dict[str, str], float]] = {}
ADMIN_REUSE_SECONDS = 300  # well inside an access token's 15 minutes: a long run signs a new admin in


def verifying_admin(api: Api) -> dict[str, str]:
    """An admin account to verify the entries experts create in setup: reused for a few minutes, then a new one
    (its access token would end with its lifetime in a long run; a new account also never meets the
    per-account sign-in limit)."""
    cached = _admins.get(id(api))
    if cached is None or time.monotonic() - cached[1] > ADMIN_REUSE_SECONDS:
        cached = _admins[id(api)] = (api.account("admin"), time.monotonic())
    return cached[0]


def create_expert(api: Api, headers: dict[str, str], *, verify: bool = True, **overrides) -> dict:
    """An expert's entry; one an expert account creates waits for an admin's check against the register (issue 9),
    which an admin does here unless ``verify=False``, so the entry is listed as the tests expect."""
    response = api.http.post("/api/v1/experts", headers=headers, json=expert_body(**{**OKINAWA_EXPERT, **overrides}))
    assert response.status_code == 201, response.text
    profile = response.json()
    if verify and profile.get("verification") == "pending":
        verified = api.http.post(f"/api/v1/admin/experts/{profile['id']}/verify", headers=verifying_admin(api))
        assert verified.status_code == 200, verified.text
        profile = api.http.get(f"/api/v1/experts/{profile['id']}", headers=headers).json()
    return profile


def create_organization(api: Api, system: System, headers: dict[str, str], **overrides) -> dict:
    """An SME's organisation, returned once matching has learnt of it from profiles' event: a request or a
    相談会 registration naming it before then is refused (422, organization_id unknown), as it should be."""
    response = api.http.post("/api/v1/organizations", headers=headers, json=organization_body(**overrides))
    assert response.status_code == 201, response.text
    organization = response.json()
    wait_until(
        lambda: in_projection(system, organization["id"], OrganizationProjection),
        timeout=60,
        message=f"organisation {organization['id']} in matching",
    )
    return organization


def submit_request(api: Api, headers: dict[str, str], **overrides) -> dict:
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


def in_projection(system: System, entity_id: str, model: type = ExpertFeature) -> bool:
    """Whether matching has learnt of the expert (its events may trail search's after a bulk import), or of
    another projected entity (``model``: e.g. OrganizationProjection)."""
    engine = make_engine(system.database_url("matching"))
    with Session(engine) as session:
        found = session.get(model, entity_id) is not None
    engine.dispose()
    return found


def error_fields(response: httpx.Response) -> set[str]:
    return {field["field"] for field in response.json()["error"]["fields"]}

"""Reference data for clients (prefectures with neighbours, topics, roles, self-diagnosis, stages)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from tsunagu import reference

router = APIRouter(prefix="/api/v1/reference", tags=["reference"])


@router.get("/prefectures")
def prefectures() -> list[dict]:
    return [asdict(p) for p in reference.prefectures().values()]


@router.get("/topics")
def topics() -> list[dict]:
    return [asdict(t) for t in reference.topics().values()]


@router.get("/dss-roles")
def dss_roles() -> list[dict]:
    return [asdict(r) for r in reference.dss_roles().values()]


@router.get("/self-diagnosis")
def self_diagnosis() -> list[dict]:
    return [asdict(q) for q in reference.self_diagnosis_questions().values()]


@router.get("/digitalization-stages")
def digitalization_stages() -> list[dict]:
    return [asdict(s) for s in reference.digitalization_stages().values()]

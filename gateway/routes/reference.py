"""Reference data for clients (prefectures with neighbours, topics, roles, self-diagnosis, stages).

Each list is the whole, fixed collection (47 prefectures, a few dozen topics), answered as a JSON array as
before rather than as a ``Page``: there is nothing to page through."""

from __future__ import annotations

from fastapi import APIRouter

from tsunagu import reference
from tsunagu.reference import DigitalizationStage, DssRole, Prefecture, SelfDiagnosisQuestion, Topic

router = APIRouter(prefix="/api/v1/reference", tags=["reference"])


@router.get("/prefectures")
def prefectures() -> list[Prefecture]:
    return list(reference.prefectures().values())


@router.get("/topics")
def topics() -> list[Topic]:
    return list(reference.topics().values())


@router.get("/dss-roles")
def dss_roles() -> list[DssRole]:
    return list(reference.dss_roles().values())


@router.get("/self-diagnosis")
def self_diagnosis() -> list[SelfDiagnosisQuestion]:
    return list(reference.self_diagnosis_questions().values())


@router.get("/digitalization-stages")
def digitalization_stages() -> list[DigitalizationStage]:
    return list(reference.digitalization_stages().values())

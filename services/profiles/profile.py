"""An expert profile as stored: the validated body as a document (JSON types), its content hash, and the
mapping between that document and the row. The API, the import and the export all go through here, so a
profile hashes the same whichever path it came through (an unchanged re-import is skipped by the hash)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

from pydantic import ValidationError

from services.profiles.catalogue import DEFAULT_VISIBILITY
from services.profiles.models import tags
from services.profiles.schemas import ExpertIn
from tsunagu.errors import validation_error

PROFILE_COLUMNS = tuple(name for name in ExpertIn.model_fields)
_DATE_COLUMNS = ("registration_date", "renewal_deadline")


def normalized_visibility(levels: dict[str, str]) -> dict[str, str]:
    """Keep only the settings that differ from the default, so equal choices hash equally."""
    return {key: levels[key] for key in sorted(levels) if DEFAULT_VISIBILITY.get(key) != levels[key]}


def profile_document(profile: ExpertIn) -> dict[str, Any]:
    """The profile as stored (JSON types), the same whichever path it came through. Only the profile
    fields: who owns the entry is not part of it (and so not of its content hash)."""
    document = profile.model_dump(mode="json", include=set(PROFILE_COLUMNS))
    document["visibility"] = normalized_visibility(document["visibility"])
    return document


def content_hash(document: dict[str, Any]) -> str:
    raw = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def profile_of(expert: Any) -> dict[str, Any]:
    """The stored entry as an ExpertIn body (what a PATCH is merged into, what the export writes)."""
    profile = {name: getattr(expert, name) for name in PROFILE_COLUMNS}
    for name in _DATE_COLUMNS:
        if profile[name] is not None:
            profile[name] = profile[name].isoformat()
    return profile


def apply_profile(expert: Any, document: dict[str, Any], digest: str) -> None:
    """Write a profile document into a row (an Expert, or the column values of a new one in the import)."""
    for name in PROFILE_COLUMNS:
        value = document[name]
        if name in _DATE_COLUMNS and value is not None:
            value = date.fromisoformat(value)
        setattr(expert, name, value)
    expert.content_hash = digest
    expert.prefecture_tags = tags(expert.prefectures)
    expert.topic_tags = tags([item["topic"] for item in expert.strengths])
    expert.skill_tags = tags(expert.skills)
    expert.service_tags = tags(expert.services)


def validate_profile(data: dict[str, Any]) -> ExpertIn:
    """A merged profile (a stored entry plus a patch) validated as a whole; a 422 naming the field if not."""
    try:
        return ExpertIn.model_validate(data)
    except ValidationError as error:
        raise validation_error(list(error.errors())) from error

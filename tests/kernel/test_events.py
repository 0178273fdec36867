"""tsunagu/events.py: the envelope."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tsunagu.events import EventEnvelope


def test_envelope_round_trip_keeps_every_field() -> None:
    envelope = EventEnvelope(
        type="profiles.expert.upserted", source="profiles", subject_id="e1", entity_version=3, data={"a": 1}
    )
    again = EventEnvelope.from_json(envelope.to_json())
    assert again == envelope
    assert len(envelope.id) == 36


def test_envelope_refuses_unknown_fields_and_negative_versions() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope.model_validate(
            {"type": "x", "source": "s", "subject_id": "1", "entity_version": 1, "data": {}, "extra": 1}
        )
    with pytest.raises(ValidationError):
        EventEnvelope(type="x", source="s", subject_id="1", entity_version=-1, data={})

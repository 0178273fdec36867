"""tsunagu/validation.py: InputModel refuses control characters and lone surrogates."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from tsunagu.validation import InputModel


class _Text(InputModel):
    name: str
    tags: list[str] = Field(default_factory=list)
    bio: str = ""


def test_control_characters_and_lone_surrogates_are_refused_field_by_field() -> None:
    assert _Text(name="山田", bio="一行目\n二行目\tタブ").bio.endswith("タブ")
    for bad in ({"name": "a\x00b"}, {"name": "ok", "tags": ["x", "\x1b[31m"]}, {"name": "\udbb4"}):
        with pytest.raises(ValidationError) as refused:
            _Text.model_validate(bad)
        assert "制御文字" in str(refused.value)

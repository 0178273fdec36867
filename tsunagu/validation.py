"""Input rules every request body shares.

Text must be free of control characters and lone surrogates: PostgreSQL refuses NUL, UTF-8 cannot carry a
lone surrogate, and the other C0 characters corrupt CSV exports and logs. Tab, line feed and carriage
return stay allowed (a biography has line breaks).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
CONTROL_CHARACTER_MESSAGE = "制御文字（NULなど）は使用できません / Control characters (such as NUL) are not allowed"


def has_forbidden_characters(value: Any) -> bool:
    if isinstance(value, str):
        return _FORBIDDEN.search(value) is not None
    if isinstance(value, dict):
        return any(has_forbidden_characters(k) or has_forbidden_characters(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_forbidden_characters(item) for item in value)
    return False


class InputModel(BaseModel):
    """Base of request bodies: unknown fields are refused, text is checked field by field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _reject_control_characters(cls, value: Any) -> Any:
        if has_forbidden_characters(value):
            raise ValueError(CONTROL_CHARACTER_MESSAGE)
        return value

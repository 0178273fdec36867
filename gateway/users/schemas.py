from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from tsunagu.reference import prefecture_code
from tsunagu.validation import InputModel

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class RegisterBody(InputModel):
    """Self sign-up is for SMEs and experts; brokers, hubs and admins are created by an admin."""

    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    password: str = Field(min_length=10, max_length=200)
    display_name: str = Field(min_length=1, max_length=100)
    role: Literal["sme", "expert"]

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class AdminCreateUserBody(InputModel):

    email: str = Field(max_length=254, pattern=EMAIL_PATTERN)
    password: str = Field(min_length=10, max_length=200)
    display_name: str = Field(min_length=1, max_length=100)
    role: Literal["sme", "expert", "broker", "hub", "admin"]
    prefectures: list[str] = Field(default_factory=list, max_length=47)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("prefectures")
    @classmethod
    def _codes(cls, values: list[str]) -> list[str]:
        codes = []
        for value in values:
            code = prefecture_code(value)
            if code is None:
                raise ValueError(f"都道府県「{value}」は存在しません / Unknown prefecture: {value}")
            codes.append(code)
        return sorted(set(codes))


class LoginBody(InputModel):

    email: str = Field(max_length=254)
    password: str = Field(max_length=200)


class UserRead(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    prefectures: list[str]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserRead

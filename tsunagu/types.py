"""The one place for each shared input rule: prefecture codes, tags, topic ids, registration numbers,
one-line text, e-mail addresses and phone numbers.

Every service validates these through the annotated types below, so a skill typed as "Cloud  Security" in
a request and "cloud security" in a profile are the same tag everywhere, and a prefecture is a JIS code
whether the caller wrote "13", 13, "東京都" or "東京". Validators raise ``ValueError("日本語 / English")``;
the kernel's error handler splits that into the two languages and names the field.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from tsunagu.reference import prefecture_code, topics
from tsunagu.validation import CONTROL_CHARACTER_MESSAGE, has_forbidden_characters

_REGISTRATION_NUMBER = re.compile(r"^[0-9]{6}$")


# --- normalisers (plain functions, for code that is not a pydantic model: CSV cells, queries) ----------


def clean_line(value: str) -> str:
    """One-line text (names, affiliation): NFKC (half-width kana, full-width digits) and single spaces."""
    return " ".join(unicodedata.normalize("NFKC", value).split())


def normalize_tag(value: str) -> str:
    """Skills and industries: NFKC, lower case, single spaces, so AWS = ＡＷＳ = ' aws ' and
    "Cloud  Security" = "cloud security"."""
    return " ".join(unicodedata.normalize("NFKC", value).lower().split())


def normalize_registration_number(value: str) -> str:
    """'第０１２３４５号', ' 012345 ' -> '012345'."""
    text = unicodedata.normalize("NFKC", str(value)).strip().removeprefix("第").removesuffix("号").strip()
    if not _REGISTRATION_NUMBER.match(text) or text == "000000":
        raise ValueError(
            "登録番号は6桁の数字で入力してください（例: 012345） / The registration number is six digits (e.g. 012345)"
        )
    return text


def normalize_prefecture(value: Any) -> str:
    code = prefecture_code(value) if isinstance(value, str | int) else None
    if code is None:
        raise ValueError(f"都道府県「{value}」が見つかりません / Unknown prefecture: {value}")
    return code


def _no_control(value: str) -> str:
    if has_forbidden_characters(value):
        raise ValueError(CONTROL_CHARACTER_MESSAGE)
    return value


def _line(value: str) -> str:
    value = clean_line(_no_control(value))
    if not value:
        raise ValueError("空にはできません / Must not be empty")
    return value


def _tag(value: str) -> str:
    value = normalize_tag(_no_control(value))
    if not value:
        raise ValueError("空のタグは使えません / Empty tags are not allowed")
    return value


def _topic(value: str) -> str:
    value = value.strip()
    if value not in topics():
        raise ValueError(f"分野「{value}」は分野一覧にありません / Unknown topic: {value}")
    return value


def normalize_email(value: str) -> str:
    """Syntax only (no DNS lookups: the machine may be offline); the domain is lower-cased."""
    text = unicodedata.normalize("NFKC", value).strip()
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError("メールアドレスの形式が正しくありません / Not a valid e-mail address") from error


def normalize_phone(value: str) -> str:
    """A Japanese or international number as the person typed it (NFKC, trimmed), if it can be dialled."""
    text = unicodedata.normalize("NFKC", value).strip()
    message = "電話番号の形式が正しくありません（例: 03-1234-5678） / Not a valid phone number"
    if not re.fullmatch(r"\+?[0-9][0-9\-() ]{6,22}[0-9]", text):
        raise ValueError(message)
    try:
        number = phonenumbers.parse(text, "JP")
    except phonenumbers.NumberParseException as error:
        raise ValueError(message) from error
    if not phonenumbers.is_possible_number(number):
        raise ValueError(message)
    return text


def _optional(value: Any) -> Any:
    """'' and whitespace mean 'none' for optional text (forms and CSV cells send them)."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


# --- annotated types (use these in schemas) ------------------------------------------------------------

PrefectureCode = Annotated[str, BeforeValidator(normalize_prefecture)]
Tag = Annotated[str, Field(max_length=50), AfterValidator(_tag)]
TopicId = Annotated[str, Field(max_length=100), AfterValidator(_topic)]
RegistrationNumber = Annotated[str, Field(max_length=20), AfterValidator(normalize_registration_number)]
Line = Annotated[str, AfterValidator(_line)]
Email = Annotated[str, Field(max_length=254), AfterValidator(normalize_email)]
Phone = Annotated[str, Field(max_length=30), AfterValidator(normalize_phone)]


_ISO_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _iso_datetime(value: Any) -> Any:
    """ISO 8601 date-times only: pydantic would also read a number ("0.5") as seconds since 1970, which no
    caller means (and the OpenAPI document promises a date-time)."""
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError(
            "日時は ISO 8601 形式（2026-04-01T09:00:00+09:00）で入力してください / Date-times are ISO 8601"
        )
    return value


# A date-time filter in a query (e.g. the audit log's since/until).
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime)]


def optional_text(max_length: int) -> Any:
    """Optional text up to max_length characters; '' and whitespace mean none."""
    return Annotated[Annotated[str, StringConstraints(max_length=max_length)] | None, BeforeValidator(_optional)]

"""Turning posted forms into the JSON bodies the services validate, without validating twice: text stays
text (the service's 422 names the field, and the form marks it), numbers written the Japanese way
(``300,000円``, full-width digits) become numbers, lists come from checkboxes or comma-separated text."""

from __future__ import annotations

import unicodedata
from typing import Any


def text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value).strip()


def many(form: dict[str, Any], name: str) -> list[str]:
    """Every value of a repeated field (checkboxes), without empties."""
    value = form.get(name, [])
    values = value if isinstance(value, list) else [value]
    return [str(item).strip() for item in values if str(item).strip()]


def tags(form: dict[str, Any], name: str) -> list[str]:
    """Comma-, 、- or newline-separated words."""
    raw = unicodedata.normalize("NFKC", text(form, name))
    for separator in ("、", "\n", ";"):
        raw = raw.replace(separator, ",")
    return [part.strip() for part in raw.split(",") if part.strip()]


def number(form: dict[str, Any], name: str) -> int | str | None:
    """``300,000円`` -> 300000; empty -> None; anything else is passed on for the service to refuse."""
    raw = unicodedata.normalize("NFKC", text(form, name))
    if not raw:
        return None
    cleaned = raw.replace(",", "").replace("円", "").replace("¥", "").replace("￥", "").strip()
    return int(cleaned) if cleaned.isdigit() else raw


def flag(form: dict[str, Any], name: str) -> bool:
    return text(form, name) in ("1", "on", "true", "yes")

"""Settings of the search service (environment variables, on top of the kernel's)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tsunagu.settings import KernelSettings

SERVICE_NAME = "search"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SearchSettings(KernelSettings):
    backend: str = Field(default="embedded", alias="SEARCH_BACKEND", pattern="^(embedded|meilisearch)$")
    meili_url: str | None = Field(default=None, alias="MEILI_URL")
    meili_master_key: str | None = Field(default=None, alias="MEILI_MASTER_KEY")

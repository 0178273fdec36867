"""Settings of the profiles service (environment variables, on top of the kernel's)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tsunagu.settings import KernelSettings

SERVICE_NAME = "profiles"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class ProfilesSettings(KernelSettings):
    # An entry whose last "still active" confirmation is older than this is deactivated.
    confirmation_max_age_days: int = Field(default=180, ge=1, le=3650, alias="PROFILES_CONFIRMATION_MAX_AGE_DAYS")
    # Reminder events go out this many days before a confirmation, training or renewal falls due.
    reminder_lead_days: int = Field(default=14, ge=0, le=365, alias="PROFILES_REMINDER_LEAD_DAYS")
    # When true, a 登録セキスペ without any training record counts as lapsed (strict operation);
    # by default such an entry stays active and is reminded to record its training.
    require_training_record: bool = Field(default=False, alias="PROFILES_REQUIRE_TRAINING_RECORD")
    # The CSV import upload may be much larger than ordinary request bodies (30,000 rows ≈ 15 MB).
    import_max_bytes: int = Field(default=64_000_000, ge=1_000, alias="PROFILES_IMPORT_MAX_BYTES")
    # Rows validated and written per batch during an import (memory stays bounded by this).
    import_chunk_rows: int = Field(default=1000, ge=1, le=20_000, alias="PROFILES_IMPORT_CHUNK_ROWS")

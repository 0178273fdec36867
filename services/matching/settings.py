"""Settings of the matching service and its scorer workers (environment variables, on top of the
kernel's). A leaf module: the API process, the workers and the composition root all read it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tsunagu.settings import KernelSettings

SERVICE_NAME = "matching"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class MatchingSettings(KernelSettings):
    # How long an expert has to answer a proposal before the expiry job closes it.
    proposal_ttl_days: int = Field(default=5, ge=1, le=90, alias="MATCHING_PROPOSAL_TTL_DAYS")
    # Programme quota: engagements (active + completed) per SME per Japanese fiscal year; 0 = no limit.
    free_consultations_per_fiscal_year: int = Field(
        default=3, ge=0, le=1000, alias="MATCHING_FREE_CONSULTATIONS_PER_FISCAL_YEAR"
    )
    # The API process expires due proposals this often; 0 turns the in-process job off (Kubernetes runs
    # the CronJob ``tsunagu matching expire-proposals`` instead).
    expiry_interval_seconds: float = Field(default=300, ge=0, le=86_400, alias="MATCHING_EXPIRY_INTERVAL_SECONDS")

"""Every service's migration history builds exactly the schema its models declare.

Several people add tables and columns at once; a column added to a model without a migration works in tests that
create tables from the models and fails in production, which migrates. Alembic's own comparison (the one
``alembic revision --autogenerate`` uses) finds the difference, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from launcher.runner import SERVICES
from tests.conftest import fresh_database
from tsunagu.migrations import alembic_config, upgrade

METADATA_OF = {
    "profiles": "services.profiles.models:ProfilesModel",
    "matching": "services.matching.models:MatchingModel",
    "search": "services.search.models:SearchModel",
    "gateway": "gateway.models:GatewayModel",
}


def _metadata(service: str):
    module, _, name = METADATA_OF[service].partition(":")
    return getattr(importlib.import_module(module), name).metadata


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_one_head_and_the_models_schema(service: str, tmp_path: Path) -> None:
    entry = SERVICES[service]
    with fresh_database(tmp_path, service) as url:
        heads = ScriptDirectory.from_config(alembic_config(entry.migrations_dir, url)).get_heads()
        assert len(heads) == 1, f"{service}: several migration heads {heads}: chain the newest revision after the other"
        upgrade(entry.migrations_dir, url)
        engine = create_engine(url)
        try:
            with engine.connect() as connection:
                diff = compare_metadata(MigrationContext.configure(connection), _metadata(service))
        finally:
            engine.dispose()
    assert diff == [], f"{service}: models and migrations differ (add a migration): {diff}"

"""Conflicts of interest and employer of an expert (issue 8: the scorer never ranks an expert for an SME
they declared a conflict with, nor for the SME that employs them).

Revision ID: 0002_expert_relations
Revises: 0001_profiles
Create Date: 2026-11-23 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_expert_relations"
down_revision: str | None = "0001_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("conflicted_organization_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column("employer_organization_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.drop_column("employer_organization_id")
        batch_op.drop_column("conflicted_organization_ids")

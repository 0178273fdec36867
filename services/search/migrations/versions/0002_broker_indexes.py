"""broker indexes: the version of each request and hub project indexed

Revision ID: 0002_broker_indexes
Revises: 08dad448617e
Create Date: 2026-11-23 06:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_broker_indexes"
down_revision: Union[str, None] = "08dad448617e"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "indexed_documents",
        sa.Column("index", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("doc_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("entity_version", sa.Integer(), nullable=False),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("index", "doc_id"),
    )


def downgrade() -> None:
    op.drop_table("indexed_documents")

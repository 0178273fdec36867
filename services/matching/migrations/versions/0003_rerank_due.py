"""re-ranking: requests.rerank_due_at marks an open request whose ranking an expert change may have moved

Revision ID: 0003_rerank_due
Revises: 0002_brokering
Create Date: 2026-11-23 05:45:00
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0003_rerank_due"
down_revision: Union[str, None] = "0002_brokering"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.add_column(sa.Column("rerank_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_requests_rerank_due_at", ["rerank_due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_rerank_due_at")
        batch.drop_column("rerank_due_at")

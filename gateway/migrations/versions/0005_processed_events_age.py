"""processed_events.processed_at indexed: the hourly pruning after the retention window deletes by age
(tsunagu/outbox.py prune_processed, issue 13)

Revision ID: 0005_processed_events_age
Revises: 0004_mail_failed
Create Date: 2026-11-23 09:00:00
"""

from typing import Sequence, Union

from alembic import op


revision: str = "0005_processed_events_age"
down_revision: Union[str, None] = "0004_mail_failed"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")

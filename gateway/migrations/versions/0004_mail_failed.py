"""mail: mail_messages.failed_at, set when a mail is refused for good or failed too often (never retried)

Revision ID: 0004_mail_failed
Revises: 0003_sessions_audit_oidc
Create Date: 2026-11-23 06:00:00
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0004_mail_failed"
down_revision: Union[str, None] = "0003_sessions_audit_oidc"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("mail_messages") as batch:
        batch.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_messages") as batch:
        batch.drop_column("failed_at")

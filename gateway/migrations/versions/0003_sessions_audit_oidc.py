"""sessions, refresh tokens, the audit log, OIDC sign-in (issue 9)

Revision ID: 0003_sessions_audit_oidc
Revises: 0002_notifications
Create Date: 2026-11-24 09:00:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_sessions_audit_oidc"
down_revision: Union[str, None] = "0002_notifications"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

S = sqlmodel.sql.sqltypes.AutoString
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", S(length=64), nullable=False),
        sa.Column("user_id", S(length=64), nullable=False),
        sa.Column("method", S(length=100), nullable=False),
        sa.Column("client_ip", S(length=64), nullable=False),
        sa.Column("user_agent", S(length=300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("end_reason", S(length=50), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auth_sessions_user_ended", "auth_sessions", ["user_id", "ended_at"])
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", S(length=64), nullable=False),
        sa.Column("session_id", S(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_refresh_tokens_session_id", "refresh_tokens", ["session_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", S(length=64), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", S(length=50), nullable=False),
        sa.Column("actor_id", S(length=64), nullable=True),
        sa.Column("user_id", S(length=64), nullable=True),
        sa.Column("target", S(length=254), nullable=True),
        sa.Column("client_ip", S(length=64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_kind_at", "audit_events", ["kind", "at"])
    op.create_index("ix_audit_events_user_at", "audit_events", ["user_id", "at"])
    op.create_index("ix_audit_events_actor_at", "audit_events", ["actor_id", "at"])
    op.create_table(
        "oidc_logins",
        sa.Column("state", S(length=100), nullable=False),
        sa.Column("provider", S(length=50), nullable=False),
        sa.Column("nonce", S(length=100), nullable=False),
        sa.Column("code_verifier", S(length=200), nullable=False),
        sa.Column("return_to", S(length=500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("state"),
    )
    op.create_table(
        "oidc_identities",
        sa.Column("provider", S(length=50), nullable=False),
        sa.Column("subject", S(length=255), nullable=False),
        sa.Column("user_id", S(length=64), nullable=False),
        sa.Column("email", S(length=254), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("provider", "subject"),
    )
    op.create_index("ix_oidc_identities_user_id", "oidc_identities", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_oidc_identities_user_id", table_name="oidc_identities")
    op.drop_table("oidc_identities")
    op.drop_table("oidc_logins")
    for name in ("ix_audit_events_actor_at", "ix_audit_events_user_at", "ix_audit_events_kind_at", "ix_audit_events_at"):
        op.drop_index(name, table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_refresh_tokens_session_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_index("ix_auth_sessions_user_ended", table_name="auth_sessions")
    op.drop_table("auth_sessions")

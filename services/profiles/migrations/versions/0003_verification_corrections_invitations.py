"""Verified experts, correction requests and organisation invitations (issue 9).

- ``experts.verification`` (+ reason, who decided, when): an entry an expert account creates is pending until
  an admin verifies it against the official register; every entry that exists already was created by an
  admin, the import or an expert before verification existed, and stays listed ("verified").
- ``registration_claims``: a second account claiming a registration number an entry holds (the admin decides).
- ``correction_requests``: an expert asks for a change of regulated data only the operator writes.
- ``organization_invitations``: being added to an organisation needs the user's consent.

Revision ID: 0003_verification
Revises: 0002_expert_relations
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_verification"
down_revision: str | None = "0002_expert_relations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_text = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verification", _text(length=20), nullable=False, server_default=sa.text("'verified'"))
        )
        batch_op.add_column(sa.Column("verification_reason", _text(length=1000), nullable=True))
        batch_op.add_column(sa.Column("verification_decided_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("verification_decided_by", _text(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_experts_verification"), ["verification"], unique=False)

    op.create_table(
        "registration_claims",
        sa.Column("id", _text(length=64), nullable=False),
        sa.Column("registration_number", _text(length=6), nullable=False),
        sa.Column("claimant_user_id", _text(length=64), nullable=False),
        sa.Column("expert_id", _text(length=64), nullable=False),
        sa.Column("held_by_user_id", _text(length=64), nullable=True),
        sa.Column("submitted", sa.JSON(), nullable=False),
        sa.Column("status", _text(length=20), nullable=False),
        sa.Column("decision_reason", _text(length=1000), nullable=True),
        sa.Column("decided_by", _text(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["experts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("registration_number", "claimant_user_id", "expert_id", "status"):
        op.create_index(op.f(f"ix_registration_claims_{column}"), "registration_claims", [column], unique=False)

    op.create_table(
        "correction_requests",
        sa.Column("id", _text(length=64), nullable=False),
        sa.Column("expert_id", _text(length=64), nullable=False),
        sa.Column("requested_by", _text(length=64), nullable=False),
        sa.Column("field", _text(length=40), nullable=False),
        sa.Column("proposed_value", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", _text(length=20), nullable=False),
        sa.Column("decision_reason", _text(length=1000), nullable=True),
        sa.Column("decided_by", _text(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["expert_id"], ["experts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("expert_id", "status"):
        op.create_index(op.f(f"ix_correction_requests_{column}"), "correction_requests", [column], unique=False)

    op.create_table(
        "organization_invitations",
        sa.Column("id", _text(length=64), nullable=False),
        sa.Column("organization_id", _text(length=64), nullable=False),
        sa.Column("user_id", _text(length=64), nullable=False),
        sa.Column("invited_by", _text(length=64), nullable=False),
        sa.Column("status", _text(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("organization_id", "user_id", "status"):
        op.create_index(
            op.f(f"ix_organization_invitations_{column}"), "organization_invitations", [column], unique=False
        )


def downgrade() -> None:
    op.drop_table("organization_invitations")
    op.drop_table("correction_requests")
    op.drop_table("registration_claims")
    with op.batch_alter_table("experts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experts_verification"))
        batch_op.drop_column("verification_decided_by")
        batch_op.drop_column("verification_decided_at")
        batch_op.drop_column("verification_reason")
        batch_op.drop_column("verification")

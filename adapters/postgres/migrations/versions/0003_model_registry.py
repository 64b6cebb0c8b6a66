"""The model registry: a version's status (candidate, active, retired) and dataset, and what a training run
used and measured.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb"))


def upgrade() -> None:
    op.add_column(
        "model_versions", sa.Column("status", sa.Text(), nullable=False, server_default="candidate")
    )
    op.add_column("model_versions", _json("dataset"))
    op.execute("UPDATE model_versions SET status = 'active' WHERE active")
    op.drop_index("uq_model_versions_active", table_name="model_versions")
    op.drop_column("model_versions", "active")
    op.create_index(
        "uq_model_versions_active",
        "model_versions",
        ["status"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.add_column("training_runs", _json("dataset"))
    op.add_column("training_runs", _json("report"))
    op.add_column("training_runs", sa.Column("started_at", sa.DateTime(timezone=True)))
    op.add_column("training_runs", sa.Column("requested_by", sa.Text()))


def downgrade() -> None:
    for column in ("requested_by", "started_at", "report", "dataset"):
        op.drop_column("training_runs", column)
    op.drop_index("uq_model_versions_active", table_name="model_versions")
    op.add_column(
        "model_versions", sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute("UPDATE model_versions SET active = (status = 'active')")
    op.drop_column("model_versions", "dataset")
    op.drop_column("model_versions", "status")
    op.create_index(
        "uq_model_versions_active",
        "model_versions",
        ["active"],
        unique=True,
        postgresql_where=sa.text("active"),
    )

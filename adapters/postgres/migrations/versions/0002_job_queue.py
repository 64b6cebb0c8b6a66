"""The job queue: procrastinate's schema, and the job columns the service's API and workers need.

procrastinate is pinned to one release (pyproject.toml), and this migration applies that release's schema as
it ships in the package. Upgrading procrastinate means a new migration that runs procrastinate's own
migration scripts for the versions in between (procrastinate.schema.SchemaManager.get_migrations_path()).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCRASTINATE_VERSION = "3.10.0"

# Every object procrastinate's schema creates is named procrastinate_*: drop them by catalogue, in
# dependency order (triggers go with their tables, functions before the types their signatures use).
_DROP_PROCRASTINATE = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tablename FROM pg_tables
                WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', item.signature);
    END LOOP;
    FOR item IN SELECT t.typname FROM pg_type t
                JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%'
                  AND t.typtype IN ('e', 'c') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END $$;
"""


def _run_script(sql: str) -> None:
    """A multi-statement script: asyncpg runs it with the simple query protocol, in this transaction."""
    connection: Any = op.get_bind().connection.dbapi_connection
    connection.run_async(lambda raw: raw.execute(sql))


def upgrade() -> None:
    import procrastinate
    from procrastinate.schema import SchemaManager

    if procrastinate.__version__ != PROCRASTINATE_VERSION:
        raise RuntimeError(
            f"migration 0002 applies procrastinate {PROCRASTINATE_VERSION}'s schema, but "
            f"{procrastinate.__version__} is installed: pin it back, or add a migration for the upgrade"
        )
    _run_script(SchemaManager.get_schema())

    op.add_column("jobs", sa.Column("source_name", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("request_fingerprint", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("queue_ref", sa.Text(), nullable=True))
    op.add_column(
        "jobs", sa.Column("cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column("jobs", sa.Column("lease_owner", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "jobs",
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    # Keep the newest rating of each (clip, rater) before the constraint makes them unique.
    op.execute(
        "DELETE FROM feedback f USING feedback newer WHERE f.clip_id = newer.clip_id "
        "AND f.rater = newer.rater AND (f.created_at, f.id) < (newer.created_at, newer.id)"
    )
    op.drop_index("ix_feedback_clip_id", table_name="feedback")
    op.create_unique_constraint(op.f("uq_feedback_clip_id_rater"), "feedback", ["clip_id", "rater"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_feedback_clip_id_rater"), "feedback", type_="unique")
    op.create_index("ix_feedback_clip_id", "feedback", ["clip_id"], unique=False)
    for column in (
        "details",
        "finished_at",
        "started_at",
        "lease_owner",
        "cancel_requested",
        "queue_ref",
        "request_fingerprint",
        "source_name",
    ):
        op.drop_column("jobs", column)
    _run_script(_DROP_PROCRASTINATE)

"""A job's change of status, stage or progress is announced with NOTIFY, so readers following a job wake at
once (the events stream) instead of polling.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel adapters/postgres/job_changes.py listens on. Spelled out: a migration must not change when
# application code does.


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION opusclip_job_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('opusclip_job_changed', NEW.id);
            RETURN NULL;
        END
        $$
        """
    )
    # Lease renewals rewrite the row every few seconds without changing what a reader sees: not announced.
    op.execute(
        """
        CREATE TRIGGER jobs_changed AFTER UPDATE ON jobs FOR EACH ROW
        WHEN (
            OLD.status IS DISTINCT FROM NEW.status
            OR OLD.stage IS DISTINCT FROM NEW.stage
            OR OLD.progress IS DISTINCT FROM NEW.progress
        )
        EXECUTE FUNCTION opusclip_job_changed()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER jobs_changed ON jobs")
    op.execute("DROP FUNCTION opusclip_job_changed()")

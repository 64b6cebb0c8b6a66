"""The schema as SQLAlchemy Core tables; Alembic migrations must reproduce it exactly (a test compares them).

Ids are text, not UUID: the domain treats ids as opaque strings and never promises they are UUIDs.
Columns avoid SQL reserved words (``start``, ``end``, ``user``) so hand-written SQL needs no quoting.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's filter: procrastinate's tables come from its own schema script (migration 0002), not from
    this metadata, so comparisons leave them out."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, JSONB, nullable=False, server_default=sa.text("'{}'::jsonb"))


videos = sa.Table(
    "videos",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # Not unique: two workers may store the same upload at once; lookups take the oldest row.
    sa.Column("sha256", sa.Text, nullable=False, index=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("duration", sa.Double, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("fps", sa.Double, nullable=False),
    sa.Column("has_audio", sa.Boolean, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    _timestamp("created_at"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    _json("options"),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("progress", sa.Double, nullable=False),
    sa.Column("error_code", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("video_id", sa.Text, sa.ForeignKey("videos.id", ondelete="SET NULL")),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("idempotency_key", sa.Text),
    # The queue's fencing token: a worker may write results only while it holds the current token.
    sa.Column("lease_token", sa.Text),
    sa.Column("lease_expires_at", sa.DateTime(timezone=True)),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    sa.Column("source_name", sa.Text),
    sa.Column("request_fingerprint", sa.Text),
    # The procrastinate job carrying this job's work (procrastinate_jobs.id, as text).
    sa.Column("queue_ref", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("lease_owner", sa.Text),
    _timestamp("started_at", nullable=True),
    _timestamp("finished_at", nullable=True),
    _json("details"),
    # Serves the queue's "oldest queued job, FOR UPDATE SKIP LOCKED" claim.
    sa.Index("ix_jobs_status_created_at", "status", "created_at"),
    sa.Index("ix_jobs_owner_created_at", "owner", "created_at"),
    # Serves the reaper's scan for expired leases; only running jobs hold one.
    sa.Index("ix_jobs_lease_expires_at", "lease_expires_at", postgresql_where=sa.text("status = 'running'")),
    # NULL keys are distinct, so jobs submitted without a key never collide.
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
)

clips = sa.Table(
    "clips",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("job_id", sa.Text, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("video_id", sa.Text, sa.ForeignKey("videos.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("start_seconds", sa.Double, nullable=False),
    sa.Column("end_seconds", sa.Double, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("transcript", sa.Text, nullable=False),
    sa.Column("media_path", sa.Text, nullable=False),
    _json("captions"),
    sa.Column("model_version", sa.Text, nullable=False),
    _timestamp("created_at"),
    # Leading job_id serves "clips of a job"; rank gives them in order without a sort.
    sa.Index("ix_clips_job_id_rank", "job_id", "rank"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("clip_id", sa.Text, sa.ForeignKey("clips.id", ondelete="CASCADE"), nullable=False),
    sa.Column("rater", sa.Text, nullable=False),
    sa.Column("rating", sa.SmallInteger, nullable=False),
    _timestamp("created_at"),
    # One rating per rater and clip: rating again replaces it. Leading clip_id serves "feedback of a clip".
    sa.UniqueConstraint("clip_id", "rater", name="uq_feedback_clip_id_rater"),
    # Training reads feedback in time windows.
    sa.Index("ix_feedback_created_at", "created_at"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, nullable=False, unique=True),
    sa.Column("artifact_path", sa.Text, nullable=False),
    _json("metrics"),
    _json("card"),
    sa.Column("status", sa.Text, nullable=False, server_default="candidate"),
    _json("dataset"),
    _timestamp("created_at"),
    # A unique index over the active rows alone allows at most one of them.
    sa.Index(
        "uq_model_versions_active", "status", unique=True, postgresql_where=sa.text("status = 'active'")
    ),
)

training_runs = sa.Table(
    "training_runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    _json("params"),
    _json("metrics"),
    sa.Column("candidate_version", sa.Text),
    sa.Column("promoted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("error", sa.Text),
    _timestamp("created_at"),
    _timestamp("finished_at", nullable=True),
    _json("dataset"),
    _json("report"),
    _timestamp("started_at", nullable=True),
    sa.Column("requested_by", sa.Text),
    sa.Index("ix_training_runs_created_at", "created_at"),
)

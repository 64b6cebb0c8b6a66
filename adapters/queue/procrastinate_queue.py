"""The JobQueue port on procrastinate, written through the unit of work's own connection.

procrastinate defers a job by calling its versioned SQL function ``procrastinate_defer_jobs_v1``; calling
that function here, on the connection that also writes the job row, puts both in one transaction: a job row
is never committed without its queue entry, nor an entry without its row. The worker side
(entrypoints/worker.py) runs procrastinate's own worker over the same tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# The names procrastinate knows our work by; the worker registers its tasks under the same ones.
JOBS_QUEUE = "opusclip-jobs"
PROCESS_TASK = "opusclip.process_job"
# Training has a queue of its own, so a worker can take it (or leave it) apart from clip jobs.
TRAINING_QUEUE = "opusclip-training"
TRAIN_TASK = "opusclip.train_model"

_DEFER = sa.text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
        CAST(:queue AS varchar), CAST(:task AS varchar), CAST(0 AS integer),
        CAST(:lock AS text), CAST(:queueing_lock AS text), CAST(:args AS jsonb),
        CAST(NULL AS timestamptz)
    )::procrastinate_job_to_defer_v1])) AS id
    """
)
# abort=false: a running job is stopped through the job row, at a stage boundary; delete=true: a waiting
# entry simply goes away.
_CANCEL = sa.text("SELECT procrastinate_cancel_job_v1(CAST(:id AS bigint), false, true)")
_LIVE = sa.text(
    "SELECT id FROM procrastinate_jobs WHERE id = ANY(CAST(:ids AS bigint[])) AND status IN ('todo', 'doing')"
)
_DEPTH = sa.text("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :queue AND status = 'todo'")


class ProcrastinateJobQueue:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def enqueue(self, job_id: str) -> str:
        # lock: two entries for one job never run at once; queueing_lock: at most one waits.
        key = f"job:{job_id}"
        return await self._defer(JOBS_QUEUE, PROCESS_TASK, key, key, {"job_id": job_id})

    async def enqueue_training(self, run_id: str) -> str:
        # lock "training": one run at a time across all workers; each run waits its turn.
        return await self._defer(
            TRAINING_QUEUE, TRAIN_TASK, "training", f"training:{run_id}", {"run_id": run_id}
        )

    async def _defer(self, queue: str, task: str, lock: str, queueing_lock: str, args: dict[str, str]) -> str:
        values = {"queue": queue, "task": task, "lock": lock, "queueing_lock": queueing_lock}
        row = (await self._connection.execute(_DEFER, {**values, "args": json.dumps(args)})).one()
        return str(row.id)

    async def cancel(self, ref: str) -> None:
        await self._connection.execute(_CANCEL, {"id": int(ref)})

    async def live(self, refs: Sequence[str]) -> set[str]:
        ids = [int(ref) for ref in refs if ref.isdigit()]
        if not ids:
            return set()
        rows = (await self._connection.execute(_LIVE, {"ids": ids})).all()
        return {str(row.id) for row in rows}

    async def depth(self) -> int:
        return int((await self._connection.execute(_DEPTH, {"queue": JOBS_QUEUE})).scalar_one())

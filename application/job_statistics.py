"""JobStatistics: how many jobs are in each state, and how long the oldest queued one has waited."""

from __future__ import annotations

import attrs

from application.job_attempt import JobRunPolicy
from application.models import served_version
from domain.jobs import PRIOR_MODEL_VERSION
from domain.ports import JobCounts, UnitOfWorkFactory


@attrs.frozen
class QueueSnapshot:
    counts: JobCounts
    queue_depth: int  # queue entries waiting for a worker (retries scheduled later included)
    model_version: str = PRIOR_MODEL_VERSION  # the version the next job will score with


@attrs.frozen
class JobStatistics:
    uow: UnitOfWorkFactory
    policy: JobRunPolicy

    async def __call__(self) -> QueueSnapshot:
        async with self.uow(read_only=True) as uow:
            counts = await uow.jobs.counts(await uow.now())
            depth = await uow.queue.depth()
        version = await served_version(self.uow, self.policy.model_pin)
        return QueueSnapshot(counts, depth, version or PRIOR_MODEL_VERSION)

"""JobStatistics: how many jobs are in each state, and how long the oldest queued one has waited."""

from __future__ import annotations

import attrs

from domain.ports import JobCounts, UnitOfWorkFactory


@attrs.frozen
class QueueSnapshot:
    counts: JobCounts
    queue_depth: int  # queue entries waiting for a worker (retries scheduled later included)


@attrs.frozen
class JobStatistics:
    uow: UnitOfWorkFactory

    async def __call__(self) -> QueueSnapshot:
        async with self.uow(read_only=True) as uow:
            counts = await uow.jobs.counts(await uow.now())
            depth = await uow.queue.depth()
        return QueueSnapshot(counts, depth)

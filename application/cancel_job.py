"""CancelJob: a queued job ends at once; a running one stops at its next stage boundary."""

from __future__ import annotations

import attrs

from application.ownership import owned_job
from domain.jobs import Job
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class CancelJob:
    uow: UnitOfWorkFactory

    async def __call__(self, owner: str, job_id: str) -> Job:
        """The job after the request; ``IllegalTransition`` (a conflict) for a job that already ended."""
        async with self.uow() as uow:
            job = await owned_job(uow, owner, job_id, for_update=True)
            if job.cancel(await uow.now()) and job.queue_ref is not None:
                await uow.queue.cancel(job.queue_ref)
            await uow.jobs.update(job)
            await uow.commit()
        return job

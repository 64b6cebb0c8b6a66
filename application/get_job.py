"""GetJob: one of the caller's jobs, with its clips once it succeeded."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from application.ownership import owned_job
from domain.jobs import Job, JobStatus, StoredClip
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class JobView:
    job: Job
    clips: tuple[StoredClip, ...]
    ratings: Mapping[str, int] = attrs.field(factory=dict)  # the caller's own rating of each clip they rated


@attrs.frozen
class GetJob:
    """Another user's job answers exactly as a missing one does, so ids cannot be probed."""

    uow: UnitOfWorkFactory

    async def __call__(self, owner: str, job_id: str) -> JobView:
        async with self.uow(read_only=True) as uow:
            job = await owned_job(uow, owner, job_id)
            # Clips are saved with the job's success, in one commit: no other job has any.
            clips = await uow.clips.for_job(job.id) if job.status is JobStatus.SUCCEEDED else ()
            ratings = await uow.feedback.ratings_by(owner, [c.id for c in clips]) if clips else {}
        return JobView(job, tuple(clips), ratings)

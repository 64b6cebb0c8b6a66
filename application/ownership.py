"""What a user may see: their own jobs and clips. Another user's answers exactly as a missing one does, so
ids cannot be probed."""

from __future__ import annotations

from domain.errors import NotFound
from domain.jobs import Job, StoredClip
from domain.ports import UnitOfWork


async def owned_job(uow: UnitOfWork, owner: str, job_id: str, *, for_update: bool = False) -> Job:
    job = await uow.jobs.get(job_id, for_update=for_update)
    if job is None or job.owner != owner:
        raise NotFound(f"job {job_id} does not exist")
    return job


async def owned_clip(uow: UnitOfWork, owner: str, clip_id: str) -> StoredClip:
    clip = await uow.clips.get(clip_id)
    job = None if clip is None else await uow.jobs.get(clip.job_id)
    if clip is None or job is None or job.owner != owner:
        raise NotFound(f"clip {clip_id} does not exist")
    return clip

"""GetClip: one clip of one of the caller's jobs (its metadata, and where its files lie)."""

from __future__ import annotations

import attrs

from domain.errors import NotFound
from domain.jobs import StoredClip
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class GetClip:
    """Another user's clip answers exactly as a missing one does."""

    uow: UnitOfWorkFactory

    async def __call__(self, owner: str, clip_id: str) -> StoredClip:
        async with self.uow(read_only=True) as uow:
            clip = await uow.clips.get(clip_id)
            job = None if clip is None else await uow.jobs.get(clip.job_id)
        if clip is None or job is None or job.owner != owner:
            raise NotFound(f"clip {clip_id} does not exist")
        return clip

"""GetClip: one clip of one of the caller's jobs (its metadata, and where its files lie)."""

from __future__ import annotations

import attrs

from application.ownership import owned_clip
from domain.jobs import StoredClip
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class GetClip:
    """Another user's clip answers exactly as a missing one does."""

    uow: UnitOfWorkFactory

    async def __call__(self, owner: str, clip_id: str) -> StoredClip:
        async with self.uow(read_only=True) as uow:
            return await owned_clip(uow, owner, clip_id)

    async def rated(self, owner: str, clip_id: str) -> tuple[StoredClip, int | None]:
        """The clip and the caller's own rating of it (None when they have not rated it)."""
        async with self.uow(read_only=True) as uow:
            clip = await owned_clip(uow, owner, clip_id)
            ratings = await uow.feedback.ratings_by(owner, [clip.id])
        return clip, ratings.get(clip.id)

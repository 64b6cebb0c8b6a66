"""RateClip: a thumbs up or down on one of the caller's clips; rating again replaces the earlier one."""

from __future__ import annotations

import attrs

from application.ownership import owned_clip
from domain.errors import InvalidInput
from domain.jobs import Feedback, new_id
from domain.ports import UnitOfWorkFactory

RATINGS = (-1, 1)


@attrs.frozen
class RateClip:
    uow: UnitOfWorkFactory

    async def __call__(self, owner: str, clip_id: str, rating: int) -> Feedback:
        if isinstance(rating, bool) or rating not in RATINGS:
            raise InvalidInput("rating must be -1 (thumbs down) or 1 (thumbs up)")
        async with self.uow() as uow:
            await owned_clip(uow, owner, clip_id)
            stored = await uow.feedback.upsert(
                Feedback(id=new_id(), clip_id=clip_id, user=owner, rating=rating)
            )
            await uow.commit()
        return stored

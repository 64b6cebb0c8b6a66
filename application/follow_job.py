"""FollowJob: one of the caller's jobs each time its status, stage or progress changes, until it ends."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator

import attrs

from application.get_job import GetJob, JobView
from domain.errors import NotFound
from domain.ports import JobChanges


@attrs.frozen
class FollowJob:
    """Wakes on the store's change notifications (``JobChanges``) rather than polling, so a stage that lasts
    a few milliseconds is still seen; ``recheck_seconds`` bounds how long it trusts silence.

    The first view comes at once (``NotFound`` for a job the caller cannot see, before anything is
    streamed); the last is the finished job, unless ``seconds`` run out or the job disappears first."""

    get: GetJob
    changes: JobChanges

    async def __call__(
        self, owner: str, job_id: str, *, seconds: float, recheck_seconds: float = 15.0
    ) -> AsyncGenerator[JobView]:
        deadline = time.monotonic() + seconds
        # Watching starts before the first read: a change between the read and the wait is still heard.
        async with self.changes.watch(job_id) as watch:
            view = await self.get(owner, job_id)
            last = None
            while True:
                state = (view.job.status, view.job.stage, view.job.progress)
                if state != last:
                    last = state
                    yield view
                left = deadline - time.monotonic()
                if view.job.status.finished or left <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, recheck_seconds)):
                        await watch.changed()
                try:
                    view = await self.get(owner, job_id)
                except NotFound:
                    return

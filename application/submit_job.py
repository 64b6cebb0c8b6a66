"""SubmitJob: validate a request for clips and queue it as a job."""

from __future__ import annotations

from typing import Any

import attrs

from domain.jobs import Job, new_id
from domain.media import ClipOptions
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class SubmitJobRequest:
    owner: str
    source: str
    options: dict[str, Any] = attrs.field(factory=dict)
    idempotency_key: str | None = None


@attrs.frozen
class SubmitJob:
    """Queues a job; options are validated now so a bad request fails before any work is queued."""

    uow: UnitOfWorkFactory

    async def __call__(self, request: SubmitJobRequest) -> Job:
        options = ClipOptions.from_dict(request.options)
        job = Job(
            id=new_id(),
            owner=request.owner,
            source=request.source,
            options=options.to_dict(),
            idempotency_key=request.idempotency_key,
        )
        async with self.uow() as uow:
            await uow.jobs.add(job)
            await uow.commit()
        return job

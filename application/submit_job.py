"""SubmitJob: validate a request for clips and queue it, the job row and its queue entry in one commit."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import attrs

from domain.errors import Conflict
from domain.jobs import Job, new_id
from domain.media import ClipOptions
from domain.ports import UnitOfWorkFactory


@attrs.frozen
class SubmitJobRequest:
    owner: str
    source: str
    options: dict[str, Any] = attrs.field(factory=dict)
    idempotency_key: str | None = None
    # What the submitter called the source (an upload's file name), for display only.
    source_name: str | None = None
    # An upload's sha256: two uploads of the same bytes are the same request, though stored twice.
    content_sha256: str | None = None


@attrs.frozen
class SubmitJobResult:
    job: Job
    created: bool  # False when an earlier request with the same Idempotency-Key made the job


@attrs.frozen
class SubmitJob:
    """Queues a job; options are validated now so a bad request fails before any work is queued.

    With an idempotency key, a repeat of the same request returns the job the first one made, and another
    request under the same key is a ``Conflict``.
    """

    uow: UnitOfWorkFactory

    async def __call__(self, request: SubmitJobRequest) -> SubmitJobResult:
        options = ClipOptions.from_dict(request.options).to_dict()
        fingerprint = _fingerprint(request.content_sha256 or request.source, options)
        key = request.idempotency_key
        if key is not None:
            earlier = await self._earlier(request.owner, key, fingerprint)
            if earlier is not None:
                return SubmitJobResult(earlier, created=False)
        job = Job(
            id=new_id(),
            owner=request.owner,
            source=request.source,
            options=options,
            idempotency_key=key,
            source_name=request.source_name,
            request_fingerprint=fingerprint if key is not None else None,
        )
        try:
            async with self.uow() as uow:
                job.queue_ref = await uow.queue.enqueue(job.id)
                await uow.jobs.add(job)
                await uow.commit()
        except Conflict:
            if key is None:
                raise
            # A concurrent request with the same key won the insert: answer as a repeat of it would.
            earlier = await self._earlier(request.owner, key, fingerprint)
            if earlier is None:
                raise
            return SubmitJobResult(earlier, created=False)
        return SubmitJobResult(job, created=True)

    async def _earlier(self, owner: str, key: str, fingerprint: str) -> Job | None:
        async with self.uow() as uow:
            earlier = await uow.jobs.by_idempotency_key(owner, key)
        if earlier is not None and earlier.request_fingerprint != fingerprint:
            raise Conflict(f"Idempotency-Key {key!r} was already used for a different request")
        return earlier


def _fingerprint(source: str, options: dict[str, Any]) -> str:
    canonical = json.dumps({"source": source, "options": options}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

"""One attempt at a job: holds its lease, writes its progress, and hears about cancellation.

Every write locks the job row, applies a domain transition to what is stored now (so a cancellation the
API recorded meanwhile is never overwritten), and stores it only while the row still carries this attempt's
lease token. A write that finds another token changes nothing: the attempt has lost the job and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import attrs

from domain.errors import JobCancelled, LeaseLost, NotFound
from domain.jobs import Job
from domain.ports import UnitOfWork, UnitOfWorkFactory
from domain.retry import RetryPolicy

log = logging.getLogger(__name__)


@attrs.frozen
class JobRunPolicy:
    """How attempts hold jobs and how failed ones are retried (from the service's settings)."""

    lease_seconds: float = 60.0
    retry: RetryPolicy = attrs.field(factory=RetryPolicy)
    progress_interval: float = 1.0  # the most often progress is written to the job row
    # MODEL_VERSION: every attempt scores with this version. Unset, an attempt scores with the registry's
    # active version as it stands when the attempt starts (the built-in prior while none is active).
    model_pin: str | None = None

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)

    @property
    def renew_every(self) -> float:
        # Three chances to renew before the lease runs out.
        return max(0.05, min(self.progress_interval, self.lease_seconds / 3))


@attrs.define
class JobAttempt:
    job_id: str
    token: str
    uow: UnitOfWorkFactory
    policy: JobRunPolicy
    stage: str = "starting"
    fraction: float = 0.0
    lost: bool = False
    cancel_requested: bool = False
    _written: tuple[str, float] = ("", -1.0)
    _last_write: float = 0.0

    def progress(self, stage: str, fraction: float) -> None:
        """Called from any thread; the keeper writes the latest value."""
        self.stage, self.fraction = stage, fraction

    async def write(self, change: Callable[[Job, datetime], None]) -> Job:
        """Apply ``change`` to the stored job and store it, fenced by this attempt's token."""
        async with self.uow() as uow:
            job = await uow.jobs.get(self.job_id, for_update=True)
            if job is None:
                raise NotFound(f"job {self.job_id} does not exist")
            now = await uow.now()
            if job.lease_token == self.token:
                change(job, now)
            await self.store(uow, job)
            await uow.commit()
        self.cancel_requested = job.cancel_requested
        self._last_write = time.monotonic()
        return job

    async def store(self, uow: UnitOfWork, job: Job) -> None:
        """Write ``job`` in ``uow`` only while the row still carries this attempt's token: a late attempt's
        write changes no row, is logged, and ends the attempt (``LeaseLost``)."""
        if not await uow.jobs.update_fenced(job, self.token):
            self.lost = True
            log.warning(
                "job.write_fenced",
                extra={"job_id": self.job_id, "token": self.token, "held_by": job.lease_token},
            )
            raise LeaseLost(f"job {self.job_id} was taken over by another attempt; this one stops")

    async def report(self) -> None:
        stage, fraction = self.stage, self.fraction
        await self.write(lambda job, now: job.report(self.token, stage, fraction, now, self.policy.lease))
        self._written = (stage, fraction)

    async def checkpoint(self, stage: str) -> None:
        """A stage boundary: record the stage, and stop here if the job was cancelled or taken over."""
        self.progress(stage, 0.0)
        await self.report()
        self.raise_if_stopped()

    def raise_if_stopped(self) -> None:
        if self.lost:
            raise LeaseLost(f"job {self.job_id} was taken over by another attempt; this one stops")
        if self.cancel_requested:
            raise JobCancelled(f"job {self.job_id} was cancelled")

    @contextlib.asynccontextmanager
    async def kept_alive(self) -> AsyncIterator[None]:
        """Renews the lease (and writes progress) in the background while the block runs."""
        keeper = asyncio.create_task(self._keep(), name=f"lease {self.job_id}")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self) -> None:
        while not self.lost:
            await asyncio.sleep(self.policy.renew_every)
            changed = (self.stage, self.fraction) != self._written
            due = time.monotonic() - self._last_write >= self.policy.lease_seconds / 3
            if not (changed or due):
                continue
            try:
                await self.report()
            except LeaseLost:
                return
            except Exception:
                # A database blip: the next round tries again; the lease outlives a few missed renewals.
                log.warning("job.renew_failed", extra={"job_id": self.job_id}, exc_info=True)

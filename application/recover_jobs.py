"""RecoverJobs: the sweeper that makes sure every unfinished job has work queued for it.

The queue's own stalled-work detection retries entries whose worker stopped heartbeating. This pass closes
the gaps that detection cannot see from the queue's side: a running job whose lease ran out while its queue
entry was already finished (a late attempt acknowledged it), and a queued job whose entry is gone. Either
goes back to the queue with a fresh entry, in the same commit as its row.
"""

from __future__ import annotations

import logging

import attrs

from application.job_attempt import JobRunPolicy
from domain.jobs import JobStatus
from domain.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)

BATCH = 100


@attrs.frozen
class RecoveryReport:
    requeued: tuple[str, ...]  # running jobs whose attempt was lost, back in the queue
    re_enqueued: tuple[str, ...]  # queued jobs that had no live queue entry


@attrs.frozen
class RecoverJobs:
    uow: UnitOfWorkFactory
    policy: JobRunPolicy

    async def __call__(self) -> RecoveryReport:
        requeued: list[str] = []
        re_enqueued: list[str] = []
        async with self.uow() as uow:
            now = await uow.now()
            # A queued job's entry is committed with it; give a just-written one time to be seen.
            candidates = await uow.jobs.needing_recovery(now, now - self.policy.lease, BATCH)
            refs = [job.queue_ref for job in candidates if job.queue_ref]
            live = await uow.queue.live(refs) if refs else set()
            for job in candidates:
                if job.queue_ref in live:
                    continue  # its entry will run (or is running and will settle the lease)
                if job.status is JobStatus.RUNNING:
                    job.recover(now)
                    requeued.append(job.id)
                else:
                    re_enqueued.append(job.id)
                if job.status is JobStatus.QUEUED:
                    job.queue_ref = await uow.queue.enqueue(job.id)
                await uow.jobs.update(job)
            await uow.commit()
        if requeued or re_enqueued:
            log.warning("jobs.recovered", extra={"requeued": requeued, "re_enqueued": re_enqueued})
        return RecoveryReport(tuple(requeued), tuple(re_enqueued))

"""The worker side of the queue: a procrastinate App on psycopg, the retry strategy that carries out the
application's decisions, and the stalled-work sweep.

procrastinate keeps worker heartbeats; a worker whose heartbeat is older than the stalled timeout has
stalled (killed, frozen, cut off) and its jobs are put back in the queue by ``retry_stalled``. Whether and
when a failed attempt runs again is the application's decision (it records it on the job row first); the
strategy here only reads it off the exception.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable

from procrastinate import App, BaseRetryStrategy, PsycopgConnector, RetryDecision
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job as QueueJob

from adapters.postgres.engine import libpq_url
from domain.errors import LeaseHeld, OpusClipError, RetryScheduled

log = logging.getLogger(__name__)

# An error outside the application's outcomes (the database went away mid-claim): retried with backoff,
# since the job row is unchanged or its lease runs out; this many times at most.
UNEXPECTED_ATTEMPTS = 20
UNEXPECTED_MAX_SECONDS = 60.0


def create_queue_app(database_url: str, *, pool_size: int, connect_timeout: float) -> App:
    connector = PsycopgConnector(
        conninfo=libpq_url(database_url),
        min_size=1,
        max_size=pool_size,
        timeout=connect_timeout * 2,
        kwargs={"connect_timeout": max(1, round(connect_timeout))},
    )
    return App(connector=connector)


class OutcomeRetry(BaseRetryStrategy):
    def get_retry_decision(self, *, exception: BaseException, job: QueueJob) -> RetryDecision | None:
        if isinstance(exception, RetryScheduled):
            return _after(exception.delay_seconds)
        if isinstance(exception, LeaseHeld):
            return _after(exception.seconds_left + 1.0)
        if isinstance(exception, asyncio.CancelledError | JobAborted):
            return _after(0.0)  # handed back by a worker shutting down: the next one may start at once
        if isinstance(exception, OpusClipError) and not exception.transient:
            return None  # settled on the job row, or nothing to do
        if job.attempts >= UNEXPECTED_ATTEMPTS:
            return None
        ceiling = min(UNEXPECTED_MAX_SECONDS, 2.0**job.attempts)
        return _after(random.uniform(ceiling / 2, ceiling))


def _after(seconds: float) -> RetryDecision:
    return RetryDecision(retry_in={"milliseconds": max(0, round(seconds * 1000))})


async def retry_stalled(app: App, stalled_seconds: float) -> list[int]:
    """Put the work of stalled workers back in the queue; returns the queue ids retried."""
    retried: list[int] = []
    stalled: Iterable[QueueJob] = await app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=stalled_seconds
    )
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except Exception:
            # Another worker's sweep got there first; the job is queued either way.
            log.debug("queue.retry_stalled_skipped", extra={"queue_id": job.id}, exc_info=True)
            continue
        assert job.id is not None  # fetched from the table
        retried.append(job.id)
    if retried:
        log.warning("queue.stalled_retried", extra={"queue_ids": retried})
    return retried

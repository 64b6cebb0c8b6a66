"""ProcessJob as the queue drives it: leases, fencing, cancellation, retries, hand-back, recovery."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from application.cancel_job import CancelJob
from application.job_attempt import JobRunPolicy
from application.process_job import ProcessJob
from application.recover_jobs import RecoverJobs
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.errors import (
    Conflict,
    IllegalTransition,
    JobCancelled,
    JobFailed,
    LeaseHeld,
    LeaseLost,
    RetryScheduled,
    SourceUnreachable,
)
from domain.jobs import Job, JobStatus, utcnow
from domain.media import Analysis, Transcript
from domain.ports import FetchedMedia, Progress, no_progress
from domain.retry import RetryPolicy
from tests.unit.fakes import (
    FakeFetcher,
    FakeRenderer,
    FakeTranscriber,
    process_job_parts,
)


@attrs.define
class HookedTranscriber(FakeTranscriber):
    """Runs ``hook`` (in the stage's thread) while transcribing: another party acting mid-job."""

    hook: Any = None

    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript:
        if self.hook is not None:
            self.hook()
        return super().transcribe(path, analysis, progress)


@attrs.define
class FlakyFetcher(FakeFetcher):
    failures: int = 0

    async def fetch(self, source: str) -> FetchedMedia:
        if self.failures:
            self.failures -= 1
            raise SourceUnreachable("connection reset by peer")
        return await super().fetch(source)


@pytest.fixture
def uow() -> MemoryUnitOfWorkFactory:
    return MemoryUnitOfWorkFactory()


def _process(uow: MemoryUnitOfWorkFactory, tmp_path: Path, **overrides: Any) -> ProcessJob:
    policy = JobRunPolicy(lease_seconds=30, retry=RetryPolicy(max_attempts=3, base_seconds=1))
    return ProcessJob(**process_job_parts(tmp_path, **{"uow": uow, "policy": policy, **overrides}))


async def _submit(uow: MemoryUnitOfWorkFactory, **request: Any) -> Job:
    fields = {"owner": "alice", "source": "talk.mp4", "options": {"max_clips": 2}, **request}
    return (await SubmitJob(uow)(SubmitJobRequest(**fields))).job


async def _stored(uow: MemoryUnitOfWorkFactory, job_id: str) -> Job:
    async with uow() as tx:
        job = await tx.jobs.get(job_id)
    assert job is not None
    return job


def _take_over(uow: MemoryUnitOfWorkFactory, job_id: str) -> None:
    """Another worker claims the job as if this attempt's lease had run out (its worker stalled)."""
    job = uow.store.jobs[job_id]
    job.lease_expires_at = utcnow() - timedelta(seconds=1)
    job.claim("other-token", "worker-b", utcnow(), timedelta(seconds=30))


async def test_submitting_queues_the_job_and_its_entry_together(uow) -> None:
    job = await _submit(uow)
    assert job.queue_ref is not None
    async with uow() as tx:
        assert await tx.queue.live([job.queue_ref]) == {job.queue_ref}


async def test_a_late_attempt_writes_nothing(uow, tmp_path, caplog) -> None:
    job = await _submit(uow)
    late = _process(uow, tmp_path, transcriber=HookedTranscriber(hook=lambda: _take_over(uow, job.id)))
    with pytest.raises(LeaseLost):
        await late(job.id, worker="worker-a")
    stored = await _stored(uow, job.id)
    assert stored.status is JobStatus.RUNNING and stored.lease_token == "other-token"
    async with uow() as tx:
        assert await tx.clips.for_job(job.id) == []
    assert "job.write_fenced" in caplog.text


async def test_a_late_attempt_at_the_final_save_writes_no_clips(uow, tmp_path) -> None:
    job = await _submit(uow)

    @attrs.define
    class TakeOverOnRender(FakeRenderer):
        def render(self, *args: Any, **kwargs: Any) -> Any:
            if not self.rendered:
                _take_over(uow, job.id)
            return super().render(*args, **kwargs)

    with pytest.raises(LeaseLost):
        await _process(uow, tmp_path, renderer=TakeOverOnRender())(job.id)
    async with uow() as tx:
        assert await tx.clips.for_job(job.id) == []


async def test_cancellation_stops_a_running_job_at_the_next_stage_boundary(uow, tmp_path) -> None:
    job = await _submit(uow)
    renderer = FakeRenderer()

    def cancel() -> None:
        asyncio.run(CancelJob(uow)("alice", job.id))  # the API, while the job transcribes

    process = _process(uow, tmp_path, transcriber=HookedTranscriber(hook=cancel), renderer=renderer)
    with pytest.raises(JobCancelled):
        await process(job.id)
    stored = await _stored(uow, job.id)
    assert stored.status is JobStatus.CANCELLED and stored.lease_token is None
    assert renderer.rendered == [], "work went on past the boundary after the job was cancelled"


async def test_cancelling_a_queued_job_drops_its_queue_entry(uow) -> None:
    job = await _submit(uow)
    cancelled = await CancelJob(uow)("alice", job.id)
    assert cancelled.status is JobStatus.CANCELLED
    async with uow() as tx:
        assert await tx.queue.live([job.queue_ref or ""]) == set()
    with pytest.raises(IllegalTransition):
        await CancelJob(uow)("alice", job.id)


async def test_transient_failures_are_retried_then_fail_with_the_reason(uow, tmp_path) -> None:
    job = await _submit(uow)
    process = _process(uow, tmp_path, fetcher=FlakyFetcher({"talk.mp4": "a" * 64}, failures=5))
    for attempt in (1, 2):
        with pytest.raises(RetryScheduled) as retry:
            await process(job.id)
        assert retry.value.cause == "source_unreachable" and retry.value.delay_seconds > 0
        stored = await _stored(uow, job.id)
        assert (stored.status, stored.attempts, stored.error_code) == (
            JobStatus.QUEUED,
            attempt,
            "source_unreachable",
        )
    with pytest.raises(JobFailed) as failed:
        await process(job.id)
    assert failed.value.code == "source_unreachable"
    stored = await _stored(uow, job.id)
    assert (stored.status, stored.attempts) == (JobStatus.FAILED, 3)
    assert "connection reset" in (stored.error or "")


async def test_a_retry_succeeds_when_the_cause_went_away(uow, tmp_path) -> None:
    job = await _submit(uow)
    process = _process(uow, tmp_path, fetcher=FlakyFetcher({"talk.mp4": "a" * 64}, failures=1))
    with pytest.raises(RetryScheduled):
        await process(job.id)
    await process(job.id)
    stored = await _stored(uow, job.id)
    assert (stored.status, stored.attempts, stored.error_code) == (JobStatus.SUCCEEDED, 2, None)


async def test_a_running_job_under_a_live_lease_is_not_claimed_twice(uow, tmp_path) -> None:
    job = await _submit(uow)
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(10)

    first = asyncio.create_task(_process(uow, tmp_path, transcriber=HookedTranscriber(hook=block))(job.id))
    await asyncio.to_thread(started.wait, 10)
    with pytest.raises(LeaseHeld):
        await _process(uow, tmp_path)(job.id)
    release.set()
    await first
    assert (await _stored(uow, job.id)).attempts == 1


async def test_a_worker_shutting_down_hands_the_job_back(uow, tmp_path) -> None:
    job = await _submit(uow)
    started, release = threading.Event(), threading.Event()

    def block() -> None:
        started.set()
        release.wait(10)

    task = asyncio.create_task(_process(uow, tmp_path, transcriber=HookedTranscriber(hook=block))(job.id))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    stored = await _stored(uow, job.id)
    assert (stored.status, stored.attempts, stored.lease_token) == (JobStatus.QUEUED, 0, None)


async def test_the_lease_is_renewed_while_a_long_stage_runs(uow, tmp_path) -> None:
    job = await _submit(uow)
    policy = JobRunPolicy(lease_seconds=0.3, retry=RetryPolicy(max_attempts=1))
    seen: list[Any] = []

    def slow() -> None:
        for _ in range(6):
            threading.Event().wait(0.15)
            seen.append(uow.store.jobs[job.id].lease_expires_at)

    await _process(uow, tmp_path, policy=policy, transcriber=HookedTranscriber(hook=slow))(job.id)
    assert len(set(seen)) >= 3, "the lease was not renewed during a 0.9 s stage with a 0.3 s lease"
    assert (await _stored(uow, job.id)).status is JobStatus.SUCCEEDED


async def test_recovery_requeues_lost_jobs_and_leaves_live_ones(uow, tmp_path) -> None:
    policy = JobRunPolicy(lease_seconds=30)
    lost, waiting = await _submit(uow), await _submit(uow)
    # ``lost`` was claimed by a worker that died after its queue entry was acknowledged.
    async with uow() as tx:
        job = await tx.jobs.get(lost.id)
        assert job is not None
        job.claim("dead", "worker-a", utcnow() - timedelta(minutes=5), timedelta(seconds=30))
        await tx.jobs.update(job)
        await tx.queue.cancel(job.queue_ref or "")
        # ``waiting`` has been queued a while; its entry is alive.
        other = await tx.jobs.get(waiting.id)
        assert other is not None
        other.updated_at = utcnow() - timedelta(minutes=5)
        await tx.jobs.update(other)
        await tx.commit()
    report = await RecoverJobs(uow, policy)()
    assert report.requeued == (lost.id,) and report.re_enqueued == ()
    recovered = await _stored(uow, lost.id)
    assert recovered.status is JobStatus.QUEUED and recovered.queue_ref != lost.queue_ref
    async with uow() as tx:
        assert await tx.queue.live([recovered.queue_ref or ""]) == {recovered.queue_ref}
    await _process(uow, tmp_path)(lost.id)
    assert (await _stored(uow, lost.id)).status is JobStatus.SUCCEEDED


async def test_recovery_re_enqueues_a_queued_job_whose_entry_is_gone(uow) -> None:
    job = await _submit(uow)
    async with uow() as tx:
        stored = await tx.jobs.get(job.id)
        assert stored is not None
        stored.updated_at = utcnow() - timedelta(minutes=5)
        await tx.jobs.update(stored)
        await tx.queue.cancel(stored.queue_ref or "")
        await tx.commit()
    report = await RecoverJobs(uow, JobRunPolicy(lease_seconds=30))()
    assert report.re_enqueued == (job.id,)


async def test_idempotency_key_replays_and_conflicts(uow) -> None:
    first = await SubmitJob(uow)(SubmitJobRequest("alice", "https://x.test/a.mp4", {}, idempotency_key="k1"))
    again = await SubmitJob(uow)(SubmitJobRequest("alice", "https://x.test/a.mp4", {}, idempotency_key="k1"))
    assert first.created and not again.created and again.job.id == first.job.id
    with pytest.raises(Conflict):
        await SubmitJob(uow)(
            SubmitJobRequest("alice", "https://x.test/a.mp4", {"max_clips": 2}, idempotency_key="k1")
        )
    # Keys are per user.
    bob = await SubmitJob(uow)(SubmitJobRequest("bob", "https://x.test/a.mp4", {}, idempotency_key="k1"))
    assert bob.created and bob.job.id != first.job.id


async def test_idempotency_of_uploads_follows_their_content(uow) -> None:
    submit = SubmitJob(uow)
    first = await submit(SubmitJobRequest("alice", "upload:" + "a" * 32, {}, "k", "t.mp4", "f" * 64))
    again = await submit(SubmitJobRequest("alice", "upload:" + "b" * 32, {}, "k", "t.mp4", "f" * 64))
    assert again.job.id == first.job.id and not again.created
    with pytest.raises(Conflict):
        await submit(SubmitJobRequest("alice", "upload:" + "c" * 32, {}, "k", "t.mp4", "e" * 64))

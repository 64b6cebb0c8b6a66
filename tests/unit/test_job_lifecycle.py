"""The job's states and moves live on the entity: every legal move works, every other is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import IllegalTransition, LeaseHeld, LeaseLost
from domain.jobs import Job, JobStatus

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


def _job() -> Job:
    return Job(id="j1", owner="alice", source="https://example.com/talk.mp4", options={})


def _running(token: str = "t1") -> Job:
    job = _job()
    job.claim(token, "worker-a", T0, LEASE)
    return job


def test_a_claim_starts_an_attempt_with_a_lease() -> None:
    job = _running()
    assert job.status is JobStatus.RUNNING
    assert (job.attempts, job.lease_token, job.lease_owner) == (1, "t1", "worker-a")
    assert job.lease_expires_at == T0 + LEASE
    assert job.started_at == T0


def test_a_live_lease_refuses_a_second_claim_and_says_how_long_is_left() -> None:
    job = _running()
    with pytest.raises(LeaseHeld) as held:
        job.claim("t2", "worker-b", T0 + timedelta(seconds=20), LEASE)
    assert held.value.seconds_left == pytest.approx(40)
    assert job.lease_token == "t1"


def test_an_expired_lease_is_taken_over_with_a_new_token() -> None:
    job = _running()
    job.claim("t2", "worker-b", T0 + LEASE, LEASE)
    assert (job.lease_token, job.lease_owner, job.attempts) == ("t2", "worker-b", 2)


@pytest.mark.parametrize("end", ["succeed", "fail", "cancel"])
def test_a_finished_job_never_runs_again(end: str) -> None:
    job = _running()
    if end == "succeed":
        job.succeed("t1", "v1", {}, T0)
    elif end == "fail":
        job.fail("t1", "corrupt_media", "bad", T0)
    else:
        job.cancel(T0)
        job.acknowledge_cancel("t1", T0)
    assert job.status.finished and job.lease_token is None
    with pytest.raises(IllegalTransition):
        job.claim("t2", "worker-b", T0 + 2 * LEASE, LEASE)


def test_only_the_holder_reports_progress_or_finishes() -> None:
    job = _running()
    job.claim("t2", "worker-b", T0 + LEASE, LEASE)  # t1's worker stalled and lost the job
    for late in (
        lambda: job.report("t1", "render", 0.5, T0, LEASE),
        lambda: job.succeed("t1", "v1", {}, T0),
        lambda: job.fail("t1", "x", "y", T0),
        lambda: job.retry("t1", "x", "y", T0),
        lambda: job.release("t1", T0),
    ):
        with pytest.raises(LeaseLost):
            late()
    assert job.status is JobStatus.RUNNING and job.lease_token == "t2"


def test_progress_renews_the_lease_and_is_clamped() -> None:
    job = _running()
    job.report("t1", "render", 1.7, T0 + timedelta(seconds=50), LEASE)
    assert (job.stage, job.progress) == ("render", 1.0)
    assert job.lease_expires_at == T0 + timedelta(seconds=110)


def test_retry_goes_back_to_the_queue_keeping_the_error() -> None:
    job = _running()
    job.retry("t1", "source_unreachable", "timed out", T0)
    assert job.status is JobStatus.QUEUED and job.lease_token is None
    assert (job.error_code, job.attempts) == ("source_unreachable", 1)


def test_release_hands_the_job_back_without_spending_an_attempt() -> None:
    job = _running()
    job.release("t1", T0)
    assert job.status is JobStatus.QUEUED and job.attempts == 0


def test_cancel_ends_a_queued_job_now_and_a_running_one_at_its_next_boundary() -> None:
    queued = _job()
    assert queued.cancel(T0) is True and queued.status is JobStatus.CANCELLED
    running = _running()
    assert running.cancel(T0) is False
    assert running.status is JobStatus.RUNNING and running.cancel_requested
    running.acknowledge_cancel("t1", T0)
    assert running.status is JobStatus.CANCELLED


def test_cancelling_a_finished_job_is_refused() -> None:
    job = _running()
    job.succeed("t1", "v1", {}, T0)
    with pytest.raises(IllegalTransition):
        job.cancel(T0)


def test_acknowledging_a_cancel_nobody_asked_for_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        _running().acknowledge_cancel("t1", T0)


def test_recover_requeues_a_lost_job_or_ends_a_cancelled_one() -> None:
    lost = _running()
    with pytest.raises(IllegalTransition):
        lost.recover(T0 + timedelta(seconds=10))  # its lease still runs
    lost.recover(T0 + LEASE)
    assert lost.status is JobStatus.QUEUED and lost.lease_token is None
    cancelled = _running()
    cancelled.cancel(T0)
    cancelled.recover(T0 + LEASE)
    assert cancelled.status is JobStatus.CANCELLED


def test_a_queued_job_cannot_report_or_finish() -> None:
    job = _job()
    with pytest.raises(IllegalTransition):
        job.succeed("t1", "v1", {}, T0)
    with pytest.raises(IllegalTransition):
        job.report("t1", "fetch", 0.0, T0, LEASE)

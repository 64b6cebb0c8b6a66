"""FollowJob: a view per change of status, stage or progress, woken by change notifications, until the end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from adapters.memory.job_changes import JobChangeHub
from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from application.follow_job import FollowJob
from application.get_job import GetJob
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.errors import NotFound
from domain.jobs import Job, utcnow

LEASE = timedelta(minutes=1)


async def _submitted(uow: MemoryUnitOfWorkFactory) -> str:
    return (await SubmitJob(uow)(SubmitJobRequest("alice", "https://x.test/a.mp4", {}))).job.id


async def _change(uow: MemoryUnitOfWorkFactory, job_id: str, change: Callable[[Job], None]) -> None:
    async with uow() as unit:
        job = await unit.jobs.get(job_id, for_update=True)
        assert job is not None
        change(job)
        await unit.jobs.update(job)
        await unit.commit()


def _state(view: object) -> tuple[str, str, float]:
    job = view.job  # type: ignore[attr-defined]
    return job.status.value, job.stage, job.progress


async def test_every_announced_change_is_a_view_and_the_finished_job_is_the_last() -> None:
    uow, hub = MemoryUnitOfWorkFactory(), JobChangeHub()
    job_id = await _submitted(uow)
    # A recheck far beyond the test's length: only the notifications can wake the follower.
    views = FollowJob(GetJob(uow), hub)("alice", job_id, seconds=600, recheck_seconds=600)
    assert _state(await anext(views)) == ("queued", "queued", 0.0)
    now = utcnow()
    steps: list[Callable[[Job], None]] = [
        lambda job: job.claim("t", "w", now, LEASE),
        lambda job: job.report("t", "analyze", 0.5, now, LEASE),
        lambda job: job.report("t", "render", 0.0, now, LEASE),
        lambda job: job.fail("t", "broken", "the file is damaged", now),
    ]
    seen = []
    for step in steps:
        await _change(uow, job_id, step)
        hub.notify(job_id)
        seen.append(_state(await anext(views)))
    assert seen == [
        ("running", "starting", 0.0),
        ("running", "analyze", 0.5),
        ("running", "render", 0.0),
        ("failed", "failed", 0.0),
    ]
    assert await anext(views, None) is None
    assert hub.watching() == 0


async def test_a_notification_without_a_change_yields_nothing() -> None:
    uow, hub = MemoryUnitOfWorkFactory(), JobChangeHub()
    job_id = await _submitted(uow)
    views = FollowJob(GetJob(uow), hub)("alice", job_id, seconds=600, recheck_seconds=600)
    await anext(views)
    hub.notify(job_id)  # a lease renewal, say: nothing a reader sees has changed
    hub.notify("another-job")
    now = utcnow()
    await _change(uow, job_id, lambda job: job.claim("t", "w", now, LEASE))
    hub.notify(job_id)
    assert _state(await anext(views)) == ("running", "starting", 0.0)
    await views.aclose()
    assert hub.watching() == 0


async def test_while_nothing_listens_the_follower_polls() -> None:
    uow, hub = MemoryUnitOfWorkFactory(), JobChangeHub(poll_seconds=0.01, listening=False)
    job_id = await _submitted(uow)
    views = FollowJob(GetJob(uow), hub)("alice", job_id, seconds=600, recheck_seconds=600)
    await anext(views)
    now = utcnow()
    await _change(uow, job_id, lambda job: job.claim("t", "w", now, LEASE))  # never announced
    assert _state(await anext(views)) == ("running", "starting", 0.0)
    await views.aclose()


async def test_the_stream_ends_when_its_time_is_up() -> None:
    uow, hub = MemoryUnitOfWorkFactory(), JobChangeHub()
    job_id = await _submitted(uow)
    views = FollowJob(GetJob(uow), hub)("alice", job_id, seconds=0.05, recheck_seconds=600)
    assert _state(await anext(views)) == ("queued", "queued", 0.0)
    assert await anext(views, None) is None
    assert hub.watching() == 0


async def test_another_users_job_is_not_found_before_anything_is_yielded() -> None:
    uow, hub = MemoryUnitOfWorkFactory(), JobChangeHub()
    job_id = await _submitted(uow)
    with pytest.raises(NotFound):
        await anext(FollowJob(GetJob(uow), hub)("bob", job_id, seconds=600))
    assert hub.watching() == 0

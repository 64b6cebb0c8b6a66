"""MemoryUnitOfWork: database-like transactions in memory (the full repository contract runs against both
adapters in tests/integration/test_postgres_repositories.py; these are the in-memory specifics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from adapters.memory.unit_of_work import MemoryUnitOfWork, MemoryUnitOfWorkFactory
from domain.errors import Conflict, NotFound
from domain.jobs import Job, JobStatus, ModelStatus, ModelVersion, StoredClip, Video, new_id
from domain.ports import UnitOfWork, UnitOfWorkFactory

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _job(owner: str = "ana", **changes: Any) -> Job:
    return attrs.evolve(Job(id=new_id(), owner=owner, source="talk.mp4", options={"count": 2}), **changes)


async def _status(uow: UnitOfWork, job_id: str) -> JobStatus:
    job = await uow.jobs.get(job_id)
    assert job is not None
    return job.status


def _video() -> Video:
    return Video(
        id=new_id(),
        sha256="ab" * 32,
        source="s",
        duration=1.0,
        width=2,
        height=2,
        fps=1.0,
        has_audio=False,
        size_bytes=1,
    )


def test_it_satisfies_the_ports() -> None:
    factory: UnitOfWorkFactory = MemoryUnitOfWorkFactory()
    uow: UnitOfWork = factory()
    assert isinstance(uow, MemoryUnitOfWork)


async def test_commit_applies_staged_writes_to_the_shared_store() -> None:
    factory = MemoryUnitOfWorkFactory()
    job = _job()
    async with factory() as uow:
        await uow.jobs.add(job)
        assert factory.store.jobs == {}  # staged only
        await uow.commit()
        assert uow.committed
    assert factory.store.jobs == {job.id: job}


async def test_leaving_without_commit_drops_staged_writes_and_reports_it() -> None:
    factory = MemoryUnitOfWorkFactory()
    async with factory() as uow:
        await uow.jobs.add(_job())
    assert not uow.committed
    assert factory.store.jobs == {}


async def test_a_reused_unit_of_work_starts_uncommitted_and_empty() -> None:
    factory = MemoryUnitOfWorkFactory()
    uow = factory()
    async with uow:
        await uow.jobs.add(_job())
        await uow.commit()
    dropped = _job()
    async with uow:
        assert not uow.committed
        await uow.jobs.add(dropped)
    async with factory() as check:
        assert await check.jobs.get(dropped.id) is None


async def test_loaded_entities_are_copies_so_edits_need_update_and_commit() -> None:
    factory = MemoryUnitOfWorkFactory()
    job = _job()
    async with factory() as uow:
        await uow.jobs.add(job)
        job.stage = "edited after add"  # the caller's object is not the stored one
        loaded = await uow.jobs.get(job.id)
        assert loaded is not None and loaded.stage == "queued"
        loaded.status = JobStatus.FAILED
        assert await _status(uow, job.id) is JobStatus.QUEUED
        await uow.jobs.update(loaded)
        await uow.commit()
    async with factory() as uow:
        assert await _status(uow, job.id) is JobStatus.FAILED


async def test_factories_do_not_share_state() -> None:
    one, other = MemoryUnitOfWorkFactory(), MemoryUnitOfWorkFactory()
    job = _job()
    async with one() as uow:
        await uow.jobs.add(job)
        await uow.commit()
    async with other() as uow:
        assert await uow.jobs.get(job.id) is None


async def test_constraints_match_postgres() -> None:
    factory = MemoryUnitOfWorkFactory()
    async with factory() as uow:
        await uow.jobs.add(_job("ana", idempotency_key="k"))
        with pytest.raises(Conflict):
            await uow.jobs.add(_job("ana", idempotency_key="k"))
        await uow.jobs.add(_job("bo", idempotency_key="k"))
        with pytest.raises(NotFound):
            await uow.jobs.add(_job(video_id=new_id()))
        with pytest.raises(NotFound):
            await uow.jobs.update(_job())
        clip = StoredClip(new_id(), new_id(), new_id(), 0, 0.0, 1.0, 0.5, "t", "x", "/c.mp4")
        with pytest.raises(NotFound):
            await uow.clips.add_many([clip])


async def test_activation_is_staged_like_any_other_write() -> None:
    factory = MemoryUnitOfWorkFactory()
    old = ModelVersion(
        id=new_id(), version="v1", artifact_path="/1", status=ModelStatus.ACTIVE, created_at=T0
    )
    new = ModelVersion(id=new_id(), version="v2", artifact_path="/2", created_at=T0 + timedelta(days=1))
    async with factory() as uow:
        await uow.models.add(old)
        await uow.models.add(new)
        with pytest.raises(Conflict):
            await uow.models.add(
                ModelVersion(id=new_id(), version="v3", artifact_path="/3", status=ModelStatus.ACTIVE)
            )
        await uow.commit()
    async with factory() as uow:
        await uow.models.activate(new.id)
        assert [v.active for v in await uow.models.list()] == [True, False]
    async with factory() as uow:
        active = await uow.models.active()
        assert active is not None and active.id == old.id


async def test_videos_by_hash_return_the_oldest_copy() -> None:
    factory = MemoryUnitOfWorkFactory()
    late, early = _video(), _video()
    late.created_at, early.created_at = T0 + timedelta(seconds=5), T0
    async with factory() as uow:
        await uow.videos.add(late)
        await uow.videos.add(early)
        found = await uow.videos.by_sha256("ab" * 32)
    assert found == early

"""Every repository round-trips its entities through real Postgres, inside the unit of work's transaction.

The same tests also run against the in-memory unit of work, so the CLI and unit tests see what the
service sees. Ids, owners and hashes are random: the database is shared and never truncated.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from domain.errors import Conflict, InvalidInput, NotFound
from domain.jobs import (
    Feedback,
    Job,
    JobStatus,
    ModelStatus,
    ModelVersion,
    RatedSpan,
    StoredClip,
    TrainingRun,
    TrainingStatus,
    Video,
    new_id,
)
from domain.ports import UnitOfWorkFactory

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["postgres", "memory"])
def uow(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    if request.param == "memory":
        return MemoryUnitOfWorkFactory()
    engine: AsyncEngine = request.getfixturevalue("postgres_engine")
    return PostgresUnitOfWorkFactory(engine)


def _video(**changes: Any) -> Video:
    video = Video(
        id=new_id(),
        sha256=new_id().replace("-", "") * 2,
        source="upload://talk.mp4",
        duration=61.25,
        width=1280,
        height=720,
        fps=29.97,
        has_audio=True,
        size_bytes=5_000_000_000,  # beyond 32 bits on purpose
        created_at=T0,
    )
    return attrs.evolve(video, **changes)


def _job(owner: str | None = None, **changes: Any) -> Job:
    job = Job(
        id=new_id(),
        owner=owner or f"user-{new_id()}",
        source="https://example.org/v.mp4",
        options={"count": 3, "aspect": "9:16", "nested": {"words": ["a", "b"]}},
        created_at=T0,
        updated_at=T0,
    )
    return attrs.evolve(job, **changes)


def _clip(job: Job, video: Video, rank: int) -> StoredClip:
    return StoredClip(
        id=new_id(),
        job_id=job.id,
        video_id=video.id,
        rank=rank,
        start=1.5 * rank,
        end=1.5 * rank + 20.25,
        score=0.1 + rank,
        title=f"Clip {rank}: “quotes” & ünïcode",
        transcript="start before you feel ready",
        media_path=f"/media/{job.id}/{rank}.mp4",
        captions={"srt": "1\n00:00:00,000 --> 00:00:01,000\nhi\n", "vtt": "WEBVTT\n"},
        model_version="prior-1",
        created_at=T0,
    )


async def _stored_job_and_video(uow: UnitOfWorkFactory) -> tuple[Job, Video]:
    video, job = _video(), _job()
    async with uow() as tx:
        await tx.videos.add(video)
        await tx.jobs.add(job)
        await tx.commit()
    return job, video


async def test_video_round_trip_and_lookup_by_hash(uow: UnitOfWorkFactory) -> None:
    first = _video(created_at=T0)
    again = _video(sha256=first.sha256, created_at=T0 + timedelta(seconds=1))
    async with uow() as tx:
        await tx.videos.add(again)
        await tx.videos.add(first)
        await tx.commit()
    async with uow() as tx:
        assert await tx.videos.get(first.id) == first
        assert await tx.videos.by_sha256(first.sha256) == first  # the oldest copy wins
        assert await tx.videos.get(new_id()) is None
        assert await tx.videos.by_sha256("0" * 64) is None


async def test_job_round_trip_with_every_field_set(uow: UnitOfWorkFactory) -> None:
    job, video = await _stored_job_and_video(uow)
    job.status, job.stage, job.progress = JobStatus.RUNNING, "transcribe", 0.375
    job.error_code, job.error, job.video_id, job.attempts = "media_error", "bad frame", video.id, 2
    job.lease_token, job.lease_expires_at = new_id(), T0 + timedelta(minutes=5)
    job.idempotency_key, job.updated_at = None, T0 + timedelta(seconds=9)
    async with uow() as tx:
        await tx.jobs.update(job)
        await tx.commit()
    async with uow() as tx:
        loaded = await tx.jobs.get(job.id)
    assert loaded == job
    assert loaded is not None and loaded.status is JobStatus.RUNNING


async def test_jobs_are_listed_newest_first_per_owner_a_page_at_a_time(uow: UnitOfWorkFactory) -> None:
    owner = f"user-{new_id()}"
    jobs = [_job(owner, created_at=T0 + timedelta(seconds=i // 2)) for i in range(5)]  # ties on time
    async with uow() as tx:
        for job in jobs:
            await tx.jobs.add(job)
        await tx.jobs.add(_job())  # someone else's
        await tx.commit()
    expected = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
    seen: list[str] = []
    cursor = None
    async with uow() as tx:
        for _ in range(3):
            page = await tx.jobs.page_for_owner(owner, 2, cursor)
            seen.extend(j.id for j in page.jobs)
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == expected and cursor is None


async def test_a_forged_cursor_is_invalid_input(uow: UnitOfWorkFactory) -> None:
    async with uow() as tx:
        for cursor in ("not-base64!", "aGVsbG8", ""):
            if cursor:
                with pytest.raises(InvalidInput):
                    await tx.jobs.page_for_owner("someone", 2, cursor)


async def test_a_fenced_update_writes_only_for_the_token_holder(uow: UnitOfWorkFactory) -> None:
    job = _job(status=JobStatus.RUNNING, lease_token="holder")
    async with uow() as tx:
        await tx.jobs.add(job)
        await tx.commit()
    job.stage = "late write"
    async with uow() as tx:
        assert await tx.jobs.update_fenced(job, "someone-else") is False
        await tx.commit()
    async with uow() as tx:
        stored = await tx.jobs.get(job.id, for_update=True)
        assert stored is not None and stored.stage == "queued"
        assert await tx.jobs.update_fenced(job, "holder") is True
        await tx.commit()
    async with uow() as tx:
        assert (await tx.jobs.get(job.id)) == job


async def test_jobs_are_found_by_their_idempotency_key(uow: UnitOfWorkFactory) -> None:
    owner, key = f"user-{new_id()}", new_id()
    job = _job(owner, idempotency_key=key)
    async with uow() as tx:
        await tx.jobs.add(job)
        await tx.commit()
    async with uow() as tx:
        assert await tx.jobs.by_idempotency_key(owner, key) == job
        assert await tx.jobs.by_idempotency_key("someone-else", key) is None


async def test_jobs_needing_recovery_are_expired_leases_and_long_queued_ones(uow: UnitOfWorkFactory) -> None:
    now = datetime.now(UTC)
    expired = _job(status=JobStatus.RUNNING, lease_token="a", lease_expires_at=now - timedelta(seconds=1))
    live = _job(status=JobStatus.RUNNING, lease_token="b", lease_expires_at=now + timedelta(minutes=1))
    old = _job(updated_at=now - timedelta(hours=1))
    fresh = _job(updated_at=now)
    async with uow() as tx:
        for job in (expired, live, old, fresh):
            await tx.jobs.add(job)
        await tx.commit()
    async with uow() as tx:
        found = {j.id for j in await tx.jobs.needing_recovery(now, now - timedelta(minutes=5), 10_000)}
    assert {expired.id, old.id} <= found
    assert not {live.id, fresh.id} & found


async def test_unfinished_sources_are_those_a_queued_or_running_job_reads(uow: UnitOfWorkFactory) -> None:
    sources = [f"upload:{new_id().replace('-', '')}" for _ in range(5)]
    queued, running, ended, twice, _unread = sources
    async with uow() as tx:
        await tx.jobs.add(_job(source=queued))
        await tx.jobs.add(_job(source=running, status=JobStatus.RUNNING, lease_token="r"))
        await tx.jobs.add(_job(source=ended, status=JobStatus.SUCCEEDED))
        await tx.jobs.add(_job(source=twice, status=JobStatus.FAILED))  # re-submitted: one job still waits
        await tx.jobs.add(_job(source=twice))
        await tx.commit()
    async with uow(read_only=True) as tx:
        assert await tx.jobs.unfinished_sources(sources) == {queued, running, twice}
        assert await tx.jobs.unfinished_sources([]) == set()


async def test_counts_by_status_and_oldest_queued(uow: UnitOfWorkFactory) -> None:
    now = datetime.now(UTC)
    async with uow() as tx:
        before = await tx.jobs.counts(now)
        await tx.jobs.add(_job(created_at=now - timedelta(days=3650)))
        await tx.jobs.add(_job(status=JobStatus.FAILED))
        await tx.commit()
    async with uow() as tx:
        after = await tx.jobs.counts(now)
    assert after.by_status[JobStatus.QUEUED] == before.by_status[JobStatus.QUEUED] + 1
    assert after.by_status[JobStatus.FAILED] == before.by_status[JobStatus.FAILED] + 1
    assert after.oldest_queued_seconds >= 3650 * 86400 - 5


async def test_a_job_and_its_queue_entry_commit_or_vanish_together(uow: UnitOfWorkFactory) -> None:
    kept, dropped = _job(), _job()
    async with uow() as tx:
        dropped.queue_ref = await tx.queue.enqueue(dropped.id)
        await tx.jobs.add(dropped)
        # no commit: the block's end rolls both back
    async with uow() as tx:
        kept.queue_ref = await tx.queue.enqueue(kept.id)
        await tx.jobs.add(kept)
        await tx.commit()
    async with uow() as tx:
        assert await tx.jobs.get(dropped.id) is None
        assert await tx.queue.live([dropped.queue_ref or "", kept.queue_ref or ""]) == {kept.queue_ref}
        assert await tx.jobs.get(kept.id) == kept
        assert await tx.queue.depth() >= 1


async def test_a_cancelled_queue_entry_is_no_longer_live(uow: UnitOfWorkFactory) -> None:
    async with uow() as tx:
        ref = await tx.queue.enqueue(new_id())
        await tx.commit()
    async with uow() as tx:
        await tx.queue.cancel(ref)
        await tx.commit()
    async with uow() as tx:
        assert await tx.queue.live([ref]) == set()


async def test_the_store_clock_moves(uow: UnitOfWorkFactory) -> None:
    async with uow() as tx:
        first = await tx.now()
        await asyncio.sleep(0.01)
        second = await tx.now()
    assert second > first and first.tzinfo is not None


async def test_a_repeated_idempotency_key_is_a_conflict_for_the_same_owner_only(
    uow: UnitOfWorkFactory,
) -> None:
    key, owner = new_id(), f"user-{new_id()}"
    async with uow() as tx:
        await tx.jobs.add(_job(owner, idempotency_key=key))
        await tx.jobs.add(_job(idempotency_key=key))  # another owner may reuse it
        await tx.jobs.add(_job(owner))  # no key never collides
        await tx.jobs.add(_job(owner))
        await tx.commit()
    async with uow() as tx:
        with pytest.raises(Conflict):
            await tx.jobs.add(_job(owner, idempotency_key=key))
        # The transaction is still usable after a conflict.
        survivor = _job(owner)
        await tx.jobs.add(survivor)
        await tx.commit()
    async with uow() as tx:
        assert await tx.jobs.get(survivor.id) is not None


async def test_adding_an_existing_id_is_a_conflict_and_updating_a_missing_one_is_not_found(
    uow: UnitOfWorkFactory,
) -> None:
    job, _ = await _stored_job_and_video(uow)
    async with uow() as tx:
        with pytest.raises(Conflict):
            await tx.jobs.add(job)
        with pytest.raises(NotFound):
            await tx.jobs.update(_job())


async def test_clips_round_trip_in_rank_order(uow: UnitOfWorkFactory) -> None:
    job, video = await _stored_job_and_video(uow)
    clips = [_clip(job, video, rank) for rank in (2, 0, 1)]
    async with uow() as tx:
        await tx.clips.add_many(clips)
        await tx.clips.add_many([])
        await tx.commit()
    async with uow() as tx:
        assert list(await tx.clips.for_job(job.id)) == sorted(clips, key=lambda c: c.rank)
        assert await tx.clips.get(clips[0].id) == clips[0]
        assert await tx.clips.get(new_id()) is None
        assert list(await tx.clips.for_job(new_id())) == []


async def test_clips_of_a_missing_job_are_not_found(uow: UnitOfWorkFactory) -> None:
    _, video = await _stored_job_and_video(uow)
    async with uow() as tx:
        with pytest.raises(NotFound):
            await tx.clips.add_many([_clip(_job(), video, 0)])


async def test_feedback_round_trip_in_time_order(uow: UnitOfWorkFactory) -> None:
    job, video = await _stored_job_and_video(uow)
    clip = _clip(job, video, 0)
    ratings = [
        Feedback(id=new_id(), clip_id=clip.id, user="ana", rating=1, created_at=T0 + timedelta(seconds=2)),
        Feedback(id=new_id(), clip_id=clip.id, user="bo", rating=-1, created_at=T0),
    ]
    async with uow() as tx:
        await tx.clips.add_many([clip])
        for rating in ratings:
            await tx.feedback.add(rating)
        await tx.commit()
    async with uow() as tx:
        assert list(await tx.feedback.for_clip(clip.id)) == [ratings[1], ratings[0]]
    async with uow() as tx:
        with pytest.raises(NotFound):
            await tx.feedback.add(Feedback(id=new_id(), clip_id=new_id(), user="ana", rating=1))


async def test_rating_a_clip_again_replaces_the_rating(uow: UnitOfWorkFactory) -> None:
    job, video = await _stored_job_and_video(uow)
    clip = _clip(job, video, 0)
    async with uow() as tx:
        await tx.clips.add_many([clip])
        first = await tx.feedback.upsert(Feedback(id=new_id(), clip_id=clip.id, user="ana", rating=1))
        await tx.commit()
    async with uow() as tx:
        again = await tx.feedback.upsert(
            Feedback(id=new_id(), clip_id=clip.id, user="ana", rating=-1, created_at=T0 + timedelta(hours=1))
        )
        await tx.feedback.upsert(Feedback(id=new_id(), clip_id=clip.id, user="bo", rating=1))
        await tx.commit()
    assert again.id == first.id and again.rating == -1
    async with uow() as tx:
        ratings = {f.user: f.rating for f in await tx.feedback.for_clip(clip.id)}
        with pytest.raises(Conflict):
            await tx.feedback.add(Feedback(id=new_id(), clip_id=clip.id, user="ana", rating=1))
    assert ratings == {"ana": -1, "bo": 1}
    async with uow() as tx:
        assert await tx.feedback.ratings_by("ana", [clip.id, new_id()]) == {clip.id: -1}
        assert await tx.feedback.ratings_by("cy", [clip.id]) == {}
        assert await tx.feedback.ratings_by("ana", []) == {}
    async with uow() as tx:
        with pytest.raises(NotFound):
            await tx.feedback.upsert(Feedback(id=new_id(), clip_id=new_id(), user="ana", rating=1))


async def test_model_versions_keep_exactly_one_active(uow: UnitOfWorkFactory) -> None:
    # Other tests may share the table, so look only at our rows (the active one is global by design).
    ours = [
        ModelVersion(
            id=new_id(),
            version=f"v-{new_id()}",
            artifact_path=f"/models/{i}.safetensors",
            metrics={"ndcg": 0.5 + i / 10, "loss": 1.25},
            card={"features": ["motion", "loudness"], "data": {"ratings": 120 + i}},
            created_at=T0 + timedelta(days=3650, seconds=i),  # newer than anything else in the table
        )
        for i in range(3)
    ]
    async with uow() as tx:
        for version in ours:
            await tx.models.add(version)
        await tx.models.activate(ours[0].id)
        await tx.commit()
    async with uow() as tx:
        activated = await tx.models.activate(ours[2].id)
        assert (activated.id, activated.status) == (ours[2].id, ModelStatus.ACTIVE)
        await tx.commit()
    async with uow() as tx:
        active = await tx.models.active()
        assert active is not None and active.id == ours[2].id
        listed = [v for v in await tx.models.list() if v.id in {o.id for o in ours}]
        assert [v.id for v in listed] == [o.id for o in reversed(ours)]
        assert [v.active for v in listed] == [True, False, False]
        # The one it replaced is retired (a rollback can activate it again); the other stays a candidate.
        assert [v.status for v in listed] == [ModelStatus.ACTIVE, ModelStatus.CANDIDATE, ModelStatus.RETIRED]
        assert await tx.models.get(ours[1].id) == ours[1]
        with pytest.raises(NotFound):
            await tx.models.activate(new_id())
    async with uow() as tx:
        with pytest.raises(Conflict):
            await tx.models.add(ModelVersion(id=new_id(), version=ours[0].version, artifact_path="/x"))


async def test_rated_spans_average_each_clips_ratings_and_count_new_ones(uow: UnitOfWorkFactory) -> None:
    job, video = await _stored_job_and_video(uow)
    liked, split, unrated = _clip(job, video, 0), _clip(job, video, 1), _clip(job, video, 2)
    later = T0 + timedelta(days=1)
    async with uow() as tx:
        await tx.clips.add_many([liked, split, unrated])
        await tx.feedback.add(Feedback(id=new_id(), clip_id=liked.id, user="ana", rating=1, created_at=T0))
        await tx.feedback.add(Feedback(id=new_id(), clip_id=split.id, user="ana", rating=1, created_at=T0))
        await tx.feedback.add(Feedback(id=new_id(), clip_id=split.id, user="bo", rating=-1, created_at=later))
        await tx.commit()
    async with uow() as tx:
        # Other tests share the tables: look at this video's spans only.
        spans = [s for s in await tx.feedback.rated_spans() if s.video_id == video.id]
        assert spans == [
            RatedSpan(video.id, video.sha256, liked.start, liked.end, 1.0, 1),
            RatedSpan(video.id, video.sha256, split.start, split.end, 0.0, 2),
        ]
        everything = await tx.feedback.count_since(None)
        assert everything >= 3
        assert await tx.feedback.count_since(later + timedelta(days=36500)) == 0
        assert await tx.feedback.count_since(later - timedelta(seconds=1)) >= 1


async def test_the_last_succeeded_training_run_is_the_newest_succeeded_one(uow: UnitOfWorkFactory) -> None:
    # Newer than any other run in a shared table, this test's earlier runs included.
    far = datetime.now(UTC) + timedelta(days=36500)
    old = TrainingRun(id=new_id(), status=TrainingStatus.SUCCEEDED, created_at=far)
    new = TrainingRun(id=new_id(), status=TrainingStatus.SUCCEEDED, created_at=far + timedelta(hours=1))
    failed = TrainingRun(id=new_id(), status=TrainingStatus.FAILED, created_at=far + timedelta(hours=2))
    async with uow() as tx:
        for run in (old, new, failed):
            await tx.training_runs.add(run)
        await tx.commit()
    async with uow() as tx:
        last = await tx.training_runs.last_succeeded()
        assert last is not None and last.id == new.id


async def test_training_run_round_trip_and_update(uow: UnitOfWorkFactory) -> None:
    run = TrainingRun(id=new_id(), params={"epochs": 3, "lr": 0.001}, created_at=T0)
    async with uow() as tx:
        await tx.training_runs.add(run)
        await tx.commit()
    run.status, run.metrics, run.candidate_version = TrainingStatus.SUCCEEDED, {"ndcg": 0.71}, "v-next"
    run.promoted, run.error, run.finished_at = True, None, T0 + timedelta(minutes=7)
    run.dataset, run.report = (
        {"videos": 12, "split": {"validation": ["v1"]}},
        {"candidate": {"kendall_tau": 0.3}},
    )
    run.started_at, run.requested_by = T0 + timedelta(seconds=5), "ana"
    async with uow() as tx:
        await tx.training_runs.update(run)
        await tx.commit()
    async with uow() as tx:
        assert await tx.training_runs.get(run.id) == run
        assert await tx.training_runs.get(new_id()) is None
        with pytest.raises(NotFound):
            await tx.training_runs.update(TrainingRun(id=new_id()))


async def test_leaving_without_commit_rolls_back(uow: UnitOfWorkFactory) -> None:
    job = _job()
    async with uow() as tx:
        await tx.jobs.add(job)
        assert await tx.jobs.get(job.id) == job  # visible inside its own transaction
    async with uow() as tx:
        assert await tx.jobs.get(job.id) is None


async def test_an_exception_rolls_back_and_propagates(uow: UnitOfWorkFactory) -> None:
    job = _job()
    with pytest.raises(RuntimeError, match="boom"):
        async with uow() as tx:
            await tx.jobs.add(job)
            raise RuntimeError("boom")
    async with uow() as tx:
        assert await tx.jobs.get(job.id) is None


async def test_commit_persists_and_later_writes_in_the_block_do_not(uow: UnitOfWorkFactory) -> None:
    kept, dropped = _job(), _job()
    async with uow() as tx:
        await tx.jobs.add(kept)
        await tx.commit()
        await tx.jobs.add(dropped)
    async with uow() as tx:
        assert await tx.jobs.get(kept.id) == kept
        assert await tx.jobs.get(dropped.id) is None


async def test_explicit_rollback_discards_and_the_block_goes_on(uow: UnitOfWorkFactory) -> None:
    discarded, kept = _job(), _job()
    async with uow() as tx:
        await tx.jobs.add(discarded)
        await tx.rollback()
        await tx.jobs.add(kept)
        await tx.commit()
    async with uow() as tx:
        assert await tx.jobs.get(discarded.id) is None
        assert await tx.jobs.get(kept.id) == kept


async def test_uncommitted_writes_are_invisible_to_a_concurrent_unit_of_work(uow: UnitOfWorkFactory) -> None:
    job = _job()
    async with uow() as writer, uow() as reader:
        await writer.jobs.add(job)
        assert await reader.jobs.get(job.id) is None
        await writer.commit()
        assert await reader.jobs.get(job.id) == job


async def test_concurrent_activations_take_turns_and_leave_one_active(postgres_engine: AsyncEngine) -> None:
    uow = PostgresUnitOfWorkFactory(postgres_engine)
    current, first, second = (
        ModelVersion(id=new_id(), version=f"v-{new_id()}", artifact_path="/m") for _ in range(3)
    )
    async with uow() as tx:
        for version in (current, first, second):
            await tx.models.add(version)
        await tx.models.activate(current.id)
        await tx.commit()
    async with uow() as a, uow() as b:
        await a.models.activate(first.id)
        # b must wait for a's transaction; without the lock it would trip the one-active index instead.
        waiting = asyncio.create_task(b.models.activate(second.id))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await a.commit()
        await waiting
        await b.commit()
    async with uow() as tx:
        active = await tx.models.active()
        assert active is not None and active.id == second.id

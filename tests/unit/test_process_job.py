import attrs
import pytest

from application.models import ActivateModel
from application.process_job import ProcessJob
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.errors import InvalidOptions, JobFailed, MediaError
from domain.jobs import JobStatus, ModelVersion, new_id
from tests.unit.fakes import (
    FakeAnalyzer,
    FakeFetcher,
    process_job_parts,
)


@pytest.fixture
def parts(tmp_path):
    return process_job_parts(
        tmp_path,
        fetcher=FakeFetcher({"talk.mp4": "a" * 64, "broken.mp4": "b" * 64}),
        analyzer=FakeAnalyzer(broken={"broken.mp4"}),
    )


async def _submit(parts, source: str = "talk.mp4", **options):
    result = await SubmitJob(parts["uow"])(SubmitJobRequest(owner="u1", source=source, options=options))
    return result.job


async def test_a_job_runs_every_stage_and_saves_its_clips(parts) -> None:
    job = await _submit(parts, max_clips=2)
    seen: list[str] = []
    result = await ProcessJob(**parts)(job.id, lambda stage, _f: seen.append(stage))

    assert [c.clip.rank for c in result.clips] == [1, 2]
    best = result.clips[0].clip
    assert best.span.overlaps(type(best.span)(60, 90)), "the loud stretch must be the best clip"
    for stage in ("fetch", "analyse", "transcribe", "score", "select", "render", "save"):
        assert stage in seen
    async with parts["uow"]() as uow:
        stored = await uow.jobs.get(job.id)
        clips = await uow.clips.for_job(job.id)
    assert stored is not None and stored.status is JobStatus.SUCCEEDED and stored.progress == 1.0
    assert sorted(c.rank for c in clips) == [1, 2]
    assert all(c.model_version == "fake-model/1" for c in clips)


async def _register(uow, version: str) -> str:
    model = ModelVersion(id=new_id(), version=version, artifact_path=f"/models/{version}.safetensors")
    async with uow() as tx:
        await tx.models.add(model)
        await tx.commit()
    return model.id


async def test_each_job_scores_with_the_version_active_when_it_starts(parts) -> None:
    process = ProcessJob(**parts)  # one long-lived use case, as in a running worker
    first = await process((await _submit(parts)).id)
    assert first.model_version == "fake-model/1"  # nothing active yet: the built-in model

    await ActivateModel(parts["uow"])(await _register(parts["uow"], "v-next"))
    second = await process((await _submit(parts, min_seconds=10)).id)
    assert second.model_version == "v-next"
    async with parts["uow"]() as uow:
        clips = await uow.clips.for_job(second.job.id)
    assert clips and all(c.model_version == "v-next" for c in clips)


async def test_a_pinned_version_wins_over_the_registry(parts) -> None:
    await ActivateModel(parts["uow"])(await _register(parts["uow"], "v-active"))
    parts["policy"] = attrs.evolve(parts["policy"], model_pin="v-pinned")
    result = await ProcessJob(**parts)((await _submit(parts)).id)
    assert result.model_version == "v-pinned"


async def test_second_run_with_other_options_skips_decoding(parts) -> None:
    first = await _submit(parts, max_clips=1)
    await ProcessJob(**parts)(first.id)
    second = await _submit(parts, max_clips=3, min_seconds=10)
    result = await ProcessJob(**parts)(second.id)
    assert parts["analyzer"].calls == 1
    assert parts["transcriber"].calls == 1
    assert result.cache_hits == {"analyse", "transcribe"}


async def test_bad_media_fails_the_job_with_its_reason(parts) -> None:
    job = await _submit(parts, source="broken.mp4")
    with pytest.raises(JobFailed) as failed:
        await ProcessJob(**parts)(job.id)
    assert isinstance(failed.value.__cause__, MediaError) and failed.value.code == "invalid_media"
    async with parts["uow"]() as uow:
        stored = await uow.jobs.get(job.id)
    assert stored is not None and stored.status is JobStatus.FAILED
    assert stored.error_code == "invalid_media"
    assert "truncated" in (stored.error or "")


async def test_invalid_options_are_refused_before_queueing(parts) -> None:
    with pytest.raises(InvalidOptions):
        await _submit(parts, aspect="4:3")


async def test_a_video_shorter_than_the_minimum_clip_fails_before_analysis(parts) -> None:
    job = await _submit(parts, min_seconds=300, max_seconds=400)  # the fake video is 120 s long
    with pytest.raises(JobFailed, match="shorter than the minimum") as failed:
        await ProcessJob(**parts)(job.id)
    assert failed.value.code == "invalid_options"
    assert parts["analyzer"].calls == 0

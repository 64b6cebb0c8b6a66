"""TrainModel with fakes: when a run trains, skips or fails, and when its candidate is promoted."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest

from adapters.memory.cache import MemoryCache
from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from adapters.queue.procrastinate_queue import TRAIN_TASK
from application.train_model import EvaluateModels, TrainingPolicy, TrainModel
from application.training_data import BuildTrainingSet
from application.training_runs import QueueTrainingRun
from domain.errors import InvalidOptions
from domain.features import FEATURE_NAMES, encode_features, features_key
from domain.jobs import (
    Feedback,
    Job,
    JobStatus,
    ModelStatus,
    StoredClip,
    TrainingRun,
    TrainingStatus,
    Video,
    new_id,
)
from domain.labels import parse_tvsum
from domain.ports import Progress, no_progress
from domain.training import Evaluation, TrainingResult, TrainingSet, TrainingSettings

SECONDS = 60
HIGHLIGHT = slice(20, 35)  # the seconds people liked in every video
MOTION = FEATURE_NAMES.index("motion")
LOUDNESS = FEATURE_NAMES.index("loudness")


def _features(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(SECONDS, len(FEATURE_NAMES))).astype(np.float32)
    x[HIGHLIGHT, MOTION] += 4.0  # the highlight shows in motion, not in loudness
    return x


@attrs.define
class VersionedModel:
    """Scores by one feature column per version: 'good' versions look at motion, others at loudness."""

    version: str = "prior-v1"

    def score(self, analysis, transcript):  # pragma: no cover - training never scores analyses
        raise AssertionError("training scores stored features")

    def score_features(self, features: np.ndarray) -> np.ndarray:
        column = MOTION if self.version.startswith("good") else LOUDNESS
        return features[:, column].astype(np.float32)

    def using(self, version: str | None) -> VersionedModel:
        return VersionedModel(version or "prior-v1")


@attrs.define
class FakeTrainer:
    version: str = "good-1"
    calls: list[int] = attrs.field(factory=list)
    fail: bool = False

    def train(
        self,
        training: TrainingSet,
        settings: TrainingSettings,
        out_dir: Path,
        progress: Progress = no_progress,
        resume: bool = False,
    ) -> TrainingResult:
        if self.fail:
            raise RuntimeError("the loss went to NaN")
        self.calls.append(len(training.videos))
        ids = sorted(v.video_id for v in training.videos)
        (out_dir / f"{self.version}.safetensors").write_bytes(b"weights")
        (out_dir / f"{self.version}.json").write_text("{}")
        return TrainingResult(
            version=self.version,
            artifact=out_dir / f"{self.version}.safetensors",
            card=out_dir / f"{self.version}.json",
            metrics=Evaluation(),
            initial_metrics=Evaluation(),
            epochs_run=1,
            best_epoch=1,
            samples_per_second=1.0,
            primary=True,
            train_ids=ids[:-2],
            validation_ids=ids[-2:],
        )


@pytest.fixture
def world(tmp_path: Path):
    uow, cache = MemoryUnitOfWorkFactory(), MemoryCache()
    build = BuildTrainingSet(uow, cache)
    policy = TrainingPolicy(model_dir=tmp_path / "models", min_new_ratings=5)
    return uow, cache, build, policy


async def _rated_videos(uow, cache, count: int = 6, *, cached: bool = True) -> list[Video]:
    rng = np.random.default_rng(7)
    videos = []
    async with uow() as tx:
        for i in range(count):
            video = Video(
                new_id(), f"{i:064x}", f"https://example.org/talk{i}.mp4", SECONDS, 640, 360, 25.0, True, 1
            )
            job = Job(new_id(), "ana", video.source, {}, status=JobStatus.SUCCEEDED, video_id=video.id)
            await tx.videos.add(video)
            await tx.jobs.add(job)
            liked = StoredClip(new_id(), job.id, video.id, 1, 20.0, 35.0, 1.0, "t", "", "/c.mp4")
            await tx.clips.add_many([liked])
            await tx.feedback.add(Feedback(new_id(), liked.id, "ana", 1))
            if cached:
                await cache.set(features_key(video.sha256), encode_features(_features(rng)))
            videos.append(video)
        await tx.commit()
    return videos


async def test_a_better_candidate_is_registered_and_promoted(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache)
    trainer = FakeTrainer("good-1")

    outcome = await TrainModel(uow, build, trainer, VersionedModel(), policy)()

    assert outcome.run is not None and outcome.run.status is TrainingStatus.SUCCEEDED
    assert outcome.run.promoted and "promoted" in outcome.message
    report = outcome.run.report
    tau = {name: report[name]["metrics"]["kendall_tau"] for name in ("candidate", "active", "random")}
    print("held-out tau:", tau)
    assert tau["candidate"] > tau["active"] + policy.promotion_margin
    assert report["active"]["version"] == "prior-v1"
    assert outcome.run.dataset["validation_ids"] and outcome.run.dataset["train_ids"]
    assert not set(outcome.run.dataset["validation_ids"]) & set(outcome.run.dataset["train_ids"])
    assert (policy.model_dir / "good-1.safetensors").is_file()  # published where every process loads from
    async with uow() as tx:
        active = await tx.models.active()
    assert (
        active is not None
        and active.version == "good-1"
        and active.metrics["kendall_tau"] == tau["candidate"]
    )


async def test_a_worse_candidate_stays_a_candidate(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache)
    await TrainModel(uow, build, FakeTrainer("good-1"), VersionedModel(), policy)()
    # New ratings arrive; the next run trains a version that looks at the wrong feature.
    async with uow() as tx:
        for job in (await tx.jobs.page_for_owner("ana", 50)).jobs:
            for clip in await tx.clips.for_job(job.id):
                await tx.feedback.upsert(Feedback(new_id(), clip.id, "bo", 1))
        await tx.commit()

    outcome = await TrainModel(uow, build, FakeTrainer("weak-2"), VersionedModel(), policy)()

    assert outcome.run is not None and outcome.run.status is TrainingStatus.SUCCEEDED
    assert not outcome.run.promoted and "kept as a candidate" in outcome.message
    async with uow() as tx:
        versions = {v.version: v.status for v in await tx.models.list()}
    assert versions == {"good-1": ModelStatus.ACTIVE, "weak-2": ModelStatus.CANDIDATE}


async def test_too_little_new_feedback_skips_without_training(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache, count=3)  # 3 ratings, 5 needed
    trainer = FakeTrainer()

    outcome = await TrainModel(uow, build, trainer, VersionedModel(), policy)()

    assert trainer.calls == []
    assert outcome.run is not None and outcome.run.status is TrainingStatus.SKIPPED
    assert "too little new feedback: 3 rating(s)" in outcome.message
    assert outcome.run.report["skipped"] == outcome.message


async def test_videos_without_cached_features_are_left_out_and_counted(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache, count=6, cached=False)

    outcome = await TrainModel(uow, build, FakeTrainer(), VersionedModel(), policy)()

    assert outcome.run is not None and outcome.run.status is TrainingStatus.SKIPPED
    assert "0 labelled video(s)" in outcome.message
    built = await build()
    assert len(built.summary["without_features"]) == 6


async def test_a_failing_trainer_fails_the_run_with_its_reason(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache)

    with pytest.raises(RuntimeError):
        await TrainModel(uow, build, FakeTrainer(fail=True), VersionedModel(), policy)()

    async with uow() as tx:
        runs = await tx.training_runs.last_unfinished()
    assert runs is not None and runs.status is TrainingStatus.FAILED
    assert runs.error == "RuntimeError: the loss went to NaN"


async def test_a_queued_run_is_taken_by_id(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache)
    queued = TrainingRun(new_id(), requested_by="admin")
    async with uow() as tx:
        await tx.training_runs.add(queued)
        await tx.commit()

    outcome = await TrainModel(uow, build, FakeTrainer(), VersionedModel(), policy)(queued.id)

    assert outcome.run is not None and outcome.run.id == queued.id
    async with uow() as tx:
        stored = await tx.training_runs.get(queued.id)
    assert stored is not None and stored.status is TrainingStatus.SUCCEEDED and stored.started_at is not None


async def test_annotations_label_matching_videos_by_name(world) -> None:
    uow, cache, build, _ = world
    videos = await _rated_videos(uow, cache, count=2)
    frames = ",".join("5" if 20 * 25 <= f < 35 * 25 else "1" for f in range(SECONDS * 25))
    annotations = parse_tvsum(f"talk0\tVT\t{frames}\ntalk0\tVT\t{frames}\nnot-here\tVT\t1,2,3\n")

    built = await build(annotations)

    by_id = {v.video_id: v for v in built.training.videos}
    annotated = by_id[videos[0].id]
    assert annotated.targets[25] == 1.0 and annotated.targets[5] == 0.0 and annotated.weights.min() == 1.0
    rated = by_id[videos[1].id]
    assert rated.weights[5] < 1.0  # an unrated second of a rated video is a weak negative
    assert built.summary["annotated_videos"] == 1 and built.summary["unmatched_annotations"] == ["not-here"]


async def test_evaluation_writes_its_report_to_the_run(world) -> None:
    uow, cache, build, policy = world
    await _rated_videos(uow, cache)
    outcome = await TrainModel(uow, build, FakeTrainer("good-1"), VersionedModel(), policy)()
    assert outcome.run is not None

    report = await EvaluateModels(uow, build, VersionedModel())(run_id=outcome.run.id)

    assert report["candidate"]["version"] == "good-1" and len(report["videos"]) == 2
    async with uow() as tx:
        stored = await tx.training_runs.get(outcome.run.id)
    assert stored is not None and stored.report["evaluation"]["videos"] == report["videos"]


async def test_a_queued_run_and_its_queue_entry_are_committed_together(world) -> None:
    uow, *_ = world
    run = await QueueTrainingRun(uow)("admin", {"epochs": 3, "force": True})
    async with uow() as tx:
        stored = await tx.training_runs.get(run.id)
    assert stored is not None and stored.status is TrainingStatus.QUEUED and stored.requested_by == "admin"
    assert any((e.task, e.target) == (TRAIN_TASK, run.id) for e in uow.store.queue.values())


@pytest.mark.parametrize(
    "params",
    [
        {"seed": {}},
        {"epochs": True},
        {"epochs": 0},
        {"epochs": 10_001},
        {"learning_rate": 0},
        {"learning_rate": "fast"},
        {"batch_size": 1.5},
        {"force": "yes"},
        {"seed": -1},
        {"dropout": 0.1},
    ],
)
async def test_bad_training_parameters_are_refused_before_anything_is_queued(world, params) -> None:
    uow, *_ = world
    with pytest.raises(InvalidOptions):
        await QueueTrainingRun(uow)("admin", params)
    assert not uow.store.training_runs and not uow.store.queue

"""TrainModel: one training run, from the ratings to a registered (and perhaps promoted) model version.

queued → running → succeeded (a candidate was trained, promoted or not) | skipped (too little new
feedback) | failed (with the reason). The candidate, the active version and a random-score baseline are
measured on the same held-out videos; the candidate is promoted only when it beats the active version's
``metric`` by more than the margin (``domain.jobs.beats``).

Under a multi-process launcher (torchrun) every process runs the training, but only the primary one
(rank 0) writes rows; the others build the same data and return.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from application.training_data import BuildTrainingSet, BuiltSet
from application.training_runs import REQUESTABLE
from domain.errors import IllegalTransition, NotFound
from domain.jobs import ModelVersion, TrainingRun, TrainingStatus, beats, new_id
from domain.labels import Annotation
from domain.ports import Progress, Trainer, UnitOfWorkFactory, VideoModel, no_progress
from domain.training import (
    Evaluation,
    LabelledVideo,
    TrainingResult,
    TrainingSettings,
    evaluate,
    random_baseline,
)

log = logging.getLogger(__name__)

MIN_VIDEOS = 2  # one to learn from and one to judge on, at the very least


@attrs.frozen
class TrainingPolicy:
    """When to train and when to promote (from the service's settings)."""

    model_dir: Path = Path("models")
    min_new_ratings: int = 20
    promotion_margin: float = 0.02
    metric: str = "kendall_tau"
    settings: TrainingSettings = attrs.field(factory=TrainingSettings)

    @property
    def runs_dir(self) -> Path:
        return self.model_dir / "runs"


@attrs.frozen
class TrainingOutcome:
    run: TrainingRun | None  # None on a non-primary process, which writes no rows
    result: TrainingResult | None
    message: str


@attrs.frozen
class TrainModel:
    uow: UnitOfWorkFactory
    build: BuildTrainingSet
    trainer: Trainer
    model: VideoModel
    policy: TrainingPolicy

    async def __call__(
        self,
        run_id: str | None = None,
        *,
        settings: TrainingSettings | None = None,
        annotations: Mapping[str, Annotation] | None = None,
        resume: bool = False,
        force: bool = False,
        primary: bool = True,
        launch_id: str | None = None,
        requested_by: str | None = None,
        progress: Progress = no_progress,
    ) -> TrainingOutcome:
        """``launch_id`` names one multi-process launch (torchrun's run id): all its processes share its
        working folder, where rank 0 keeps the checkpoints every rank resumes from."""
        settings = settings or self.policy.settings
        if not primary:
            return await self._follow(settings, annotations, resume, force, launch_id or "launch", progress)
        run = await self._open(run_id, settings, resume, requested_by)
        if launch_id is not None:
            run.params = {**run.params, "launch_id": launch_id}
        asked = {k: v for k, v in run.params.items() if k in REQUESTABLE}  # a run queued through the API
        force = force or bool(asked.pop("force", False))
        try:
            settings = attrs.evolve(settings, **asked)
            return await self._run(run, settings, annotations, resume, force, progress)
        except BaseException as error:
            reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            await asyncio.shield(self._write(run, lambda now: run.fail(now, reason)))
            raise

    async def _open(
        self, run_id: str | None, settings: TrainingSettings, resume: bool, requested_by: str | None
    ) -> TrainingRun:
        async with self.uow() as tx:
            now = await tx.now()
            if run_id is not None:
                run = await tx.training_runs.get(run_id)
                if run is None:
                    raise NotFound(f"training run {run_id} does not exist")
                run.resume(now) if resume else run.start(now)
                await tx.training_runs.update(run)
            elif resume:
                found = await tx.training_runs.last_unfinished()
                if found is None:
                    raise IllegalTransition("no interrupted or failed training run to resume")
                run = found
                run.resume(now)
                await tx.training_runs.update(run)
            else:
                run = TrainingRun(
                    id=new_id(), params=settings.to_dict(), created_at=now, requested_by=requested_by
                )
                run.start(now)
                await tx.training_runs.add(run)
            await tx.commit()
        return run

    async def _follow(
        self,
        settings: TrainingSettings,
        annotations: Mapping[str, Annotation] | None,
        resume: bool,
        force: bool,
        launch_id: str,
        progress: Progress,
    ) -> TrainingOutcome:
        """A rank other than 0: the same decisions from the same data as rank 0, and no writes."""
        _, why = await self._enough_feedback(force or resume or bool(annotations))
        if why is not None:
            return TrainingOutcome(None, None, why)
        built = await self.build(annotations)
        why = _enough_data(built)
        if why is not None:
            return TrainingOutcome(None, None, why)
        result = await self._train(built, settings, self._run_dir(launch_id), resume, progress)
        return TrainingOutcome(None, result, "trained as a follower process; rank 0 records the run")

    async def _enough_feedback(self, exempt: bool) -> tuple[int, str | None]:
        """New ratings since the last trained version, and why that is too few to train (None: enough)."""
        async with self.uow(read_only=True) as tx:
            last = await tx.training_runs.last_succeeded()
            new_ratings = await tx.feedback.count_since(None if last is None else last.created_at)
        if exempt or new_ratings >= self.policy.min_new_ratings:
            return new_ratings, None
        return new_ratings, (
            f"too little new feedback: {new_ratings} rating(s) since the last trained version, "
            f"{self.policy.min_new_ratings} needed (TRAIN_MIN_NEW_RATINGS)"
        )

    async def _run(
        self,
        run: TrainingRun,
        settings: TrainingSettings,
        annotations: Mapping[str, Annotation] | None,
        resume: bool,
        force: bool,
        progress: Progress,
    ) -> TrainingOutcome:
        new_ratings, why = await self._enough_feedback(force or resume or bool(annotations))
        if why is None:
            built = await self.build(annotations)
            why = _enough_data(built)
        if why is not None:
            await self._write(run, lambda now: run.skip(now, why))
            return TrainingOutcome(run, None, why)
        run.dataset = built.summary
        launch_id = run.params.get("launch_id")
        result = await self._train(built, settings, self._run_dir(launch_id or run.id), resume, progress)
        artifact, card = self._publish(result)
        validation = [v for v in built.training.videos if v.video_id in set(result.validation_ids)]
        async with self.uow(read_only=True) as tx:
            active = await tx.models.active()
        report = await asyncio.to_thread(
            self._compare,
            result.version,
            None if active is None else active.version,
            validation,
            settings.seed,
        )
        candidate = Evaluation.from_dict(report["candidate"]["metrics"])
        incumbent = report["active"]["metrics"]
        promote = beats(candidate.to_dict(), incumbent, self.policy.metric, self.policy.promotion_margin)
        report |= {
            "metric": self.policy.metric,
            "margin": self.policy.promotion_margin,
            "promoted": promote,
            "new_ratings": new_ratings,
            "training": result.to_dict(),
        }
        dataset = {
            **built.summary,
            "train_ids": list(result.train_ids),
            "validation_ids": list(result.validation_ids),
        }
        version = ModelVersion(
            id=new_id(),
            version=result.version,
            artifact_path=str(artifact),
            metrics={k: float(v) for k, v in candidate.to_dict().items()},
            card={"path": str(card)},
            dataset=dataset,
        )
        metrics = {k: float(v) for k, v in candidate.to_dict().items()}

        async with self.uow() as tx:
            now = await tx.now()
            await tx.models.add(version)
            if promote:
                await tx.models.activate(version.id)
            run.dataset, run.report = dataset, report
            run.succeed(now, result.version, promote, metrics)
            await tx.training_runs.update(run)
            await tx.commit()
        verdict = "promoted to active" if promote else f"kept as a candidate ({self._why_not(report)})"
        log.info(
            "training.finished", extra={"run_id": run.id, "version": result.version, "promoted": promote}
        )
        return TrainingOutcome(run, result, f"trained {result.version}: {verdict}")

    async def _train(
        self, built: BuiltSet, settings: TrainingSettings, out_dir: Path, resume: bool, progress: Progress
    ) -> TrainingResult:
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
        return await asyncio.to_thread(
            self.trainer.train, built.training, settings, out_dir, progress, resume
        )

    def _run_dir(self, run_id: str) -> Path:
        return self.policy.runs_dir / run_id

    def _publish(self, result: TrainingResult) -> tuple[Path, Path]:
        """The run's weights and card, moved into MODEL_CACHE_DIR where every process loads versions from."""
        self.policy.model_dir.mkdir(parents=True, exist_ok=True)
        placed = []
        for source in (result.artifact, result.card):
            target = self.policy.model_dir / source.name
            if source.resolve() != target.resolve():
                os.replace(source, target)
            placed.append(target)
        return placed[0], placed[1]

    def _compare(
        self, candidate: str, active: str | None, videos: Sequence[LabelledVideo], seed: int
    ) -> dict[str, Any]:
        return compare(self.model, candidate, active, videos, seed)

    def _why_not(self, report: Mapping[str, Any]) -> str:
        metric = self.policy.metric
        got = report["candidate"]["metrics"].get(metric, 0.0)
        bar = report["active"]["metrics"].get(metric, 0.0)
        margin = self.policy.promotion_margin
        return f"{metric} {got:.3f} does not beat the active version's {bar:.3f} by {margin:g}"

    async def _write(self, run: TrainingRun, change: Any) -> None:
        async with self.uow() as tx:
            now = await tx.now()
            stored = await tx.training_runs.get(run.id)
            if stored is None or stored.status is not TrainingStatus.RUNNING:
                return
            change(now)
            await tx.training_runs.update(run)
            await tx.commit()


def _enough_data(built: BuiltSet) -> str | None:
    videos = len(built.training.videos)
    if videos >= MIN_VIDEOS:
        return None
    return f"too little data: {videos} labelled video(s) with cached features, {MIN_VIDEOS} needed"


def compare(
    model: VideoModel, candidate: str | None, active: str | None, videos: Sequence[LabelledVideo], seed: int
) -> dict[str, Any]:
    """The candidate, the active version (None: the built-in prior) and random scores on the same videos."""

    def measured(version: str | None) -> dict[str, Any]:
        scorer = model.using(version)
        scores = [scorer.score_features(v.features) for v in videos]
        return {"version": scorer.version, "metrics": evaluate(scores, videos).to_dict()}

    report: dict[str, Any] = {
        "videos": [v.video_id for v in videos],
        "active": measured(active),
        "random": {"version": "random", "metrics": random_baseline(videos, seed).to_dict()},
    }
    if candidate is not None:
        report["candidate"] = measured(candidate)
    return report


@attrs.frozen
class EvaluateModels:
    """``opusclip eval``: a version, the active one and random scores side by side on a labelled set.

    With a training run, the set is that run's held-out videos and the report is written to its row;
    otherwise it is every labelled video the ratings and annotations give.
    """

    uow: UnitOfWorkFactory
    build: BuildTrainingSet
    model: VideoModel

    async def __call__(
        self,
        candidate: str | None = None,
        *,
        run_id: str | None = None,
        annotations: Mapping[str, Annotation] | None = None,
        seed: int = 0,
    ) -> dict[str, Any]:
        run = None
        async with self.uow(read_only=True) as tx:
            if run_id is not None:
                run = await tx.training_runs.get(run_id)
                if run is None:
                    raise NotFound(f"training run {run_id} does not exist")
            active = await tx.models.active()
        built = await self.build(annotations)
        videos: Sequence[LabelledVideo] = built.training.videos
        if run is not None:
            held_out = set(run.dataset.get("validation_ids", ()))
            videos = [v for v in videos if v.video_id in held_out]
            candidate = candidate or run.candidate_version
        if not videos:
            raise NotFound("no labelled videos with cached features to evaluate on")
        report = await asyncio.to_thread(
            compare, self.model, candidate, None if active is None else active.version, videos, seed
        )
        report["dataset"] = built.summary
        if run is not None:
            async with self.uow() as tx:
                stored = await tx.training_runs.get(run.id)
                if stored is not None:
                    stored.report = {**stored.report, "evaluation": report}
                    await tx.training_runs.update(stored)
                    await tx.commit()
        return report

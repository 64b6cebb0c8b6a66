"""Labelled training sets from what the service already holds: ratings in Postgres and features in the
cache (``domain.features``), plus imported TVSum-style annotation files. Nothing here decodes video."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from domain.features import decode_features, features_key
from domain.jobs import RatedSpan, Video
from domain.labels import Annotation, labels_from_frames, labels_from_ratings
from domain.ports import Cache, UnitOfWorkFactory
from domain.training import LabelledVideo, TrainingSet


@attrs.frozen
class BuiltSet:
    training: TrainingSet
    summary: dict[str, Any]  # what went in and what was left out, and why


@attrs.frozen
class BuildTrainingSet:
    uow: UnitOfWorkFactory
    cache: Cache

    async def __call__(self, annotations: Mapping[str, Annotation] | None = None) -> BuiltSet:
        """Every rated video, then every annotated video that matches an analysed one by name.

        A video whose features are no longer cached is left out and counted; an annotated video also
        rated by users is labelled by its annotation (denser and independent of what the model offered).
        """
        async with self.uow(read_only=True) as tx:
            spans = await tx.feedback.rated_spans()
            named = await tx.videos.named() if annotations else []
        annotated = {name: video for name, video in named if annotations and name in annotations}
        annotated_ids = {video.id for video in annotated.values()}
        videos: list[LabelledVideo] = []
        missing: list[str] = []
        rated = rated_videos = 0
        for video_id, group in itertools.groupby(spans, key=lambda s: s.video_id):
            if video_id in annotated_ids:
                continue
            video_spans = list(group)
            labelled = await self._rated(video_id, video_spans)
            if labelled is None:
                missing.append(video_id)
                continue
            videos.append(labelled)
            rated += sum(s.ratings for s in video_spans)
            rated_videos += 1
        unmatched = sorted(set(annotations or {}) - set(annotated))
        for name, video in sorted(annotated.items()):
            labelled = await self._annotated(video, annotations[name]) if annotations else None
            if labelled is None:
                missing.append(video.id)
                continue
            videos.append(labelled)
        summary = {
            **TrainingSet(tuple(videos)).summary(),
            "ratings": rated,
            "rated_videos": rated_videos,
            "annotated_videos": len(videos) - rated_videos,
            "without_features": missing,
            "unmatched_annotations": unmatched,
        }
        return BuiltSet(TrainingSet(tuple(videos)), summary)

    async def _features(self, sha256: str) -> np.ndarray | None:
        data = await self.cache.get(features_key(sha256))
        return None if data is None else decode_features(data)

    async def _rated(self, video_id: str, spans: Sequence[RatedSpan]) -> LabelledVideo | None:
        features = await self._features(spans[0].sha256)
        if features is None:
            return None
        targets, weights = labels_from_ratings(features.shape[0], spans)
        return LabelledVideo(video_id, features, targets, weights)

    async def _annotated(self, video: Video, annotation: Annotation) -> LabelledVideo | None:
        features = await self._features(video.sha256)
        if features is None:
            return None
        targets, weights = labels_from_frames(annotation.frame_scores, video.fps, features.shape[0])
        return LabelledVideo(video.id, features, targets, weights)

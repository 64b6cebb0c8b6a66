"""What a training run learns from and how it is judged: labelled videos, the split, settings, metrics.

A labelled video is one row per second: the features the model scores (``FEATURE_COLUMNS``, the order of
``HighlightNet.FEATURE_NAMES``), a target in [0, 1] (1: a second of a rated highlight) and a weight (how
much that second counts: a weak negative, an unrated second of a rated video, weighs less).

Metrics follow the TVSum literature: Kendall's τ and Spearman's ρ of a video's per-second scores against
its labels, averaged over videos, plus F1 (in seconds) of the clips the selector would cut against the
rated highlights. Every metric is a finite number (JSONB refuses NaN): a video whose labels do not vary
carries no ranking information and is left out of τ and ρ; a constant score ranks nothing and gets 0.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from domain.errors import InvalidInput, InvalidOptions
from domain.media import MEDIA_FEATURES, TEXT_FEATURES, ClipOptions, Span, Transcript
from domain.selection import select_clips

# Columns of LabelledVideo.features: the analyzer's, then the transcript's (HighlightNet.FEATURE_NAMES).
FEATURE_COLUMNS: tuple[str, ...] = MEDIA_FEATURES + TEXT_FEATURES
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _float32(value: Any) -> np.ndarray:
    return np.ascontiguousarray(value, dtype=np.float32)


def _videos(values: Iterable[LabelledVideo]) -> tuple[LabelledVideo, ...]:
    return tuple(values)


def _ids(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _records(values: Iterable[EpochRecord]) -> tuple[EpochRecord, ...]:
    return tuple(values)


@attrs.frozen(eq=False)
class LabelledVideo:
    video_id: str
    features: np.ndarray = attrs.field(converter=_float32)  # (seconds, len(FEATURE_COLUMNS)); NaN = unknown
    targets: np.ndarray = attrs.field(converter=_float32)  # (seconds,) in [0, 1]
    weights: np.ndarray = attrs.field(converter=_float32)  # (seconds,) >= 0

    def __attrs_post_init__(self) -> None:
        seconds = self.features.shape[0] if self.features.ndim == 2 else -1
        if self.features.ndim != 2 or self.features.shape[1] != len(FEATURE_COLUMNS):
            raise InvalidInput(
                f"video {self.video_id}: features must be (seconds, {len(FEATURE_COLUMNS)}), "
                f"got {self.features.shape}"
            )
        if self.targets.shape != (seconds,) or self.weights.shape != (seconds,):
            raise InvalidInput(f"video {self.video_id}: targets and weights need one value per second")
        if not (np.isfinite(self.targets).all() and ((self.targets >= 0) & (self.targets <= 1)).all()):
            raise InvalidInput(f"video {self.video_id}: targets must be finite and within [0, 1]")
        if not (np.isfinite(self.weights).all() and (self.weights >= 0).all()):
            raise InvalidInput(f"video {self.video_id}: weights must be finite and not negative")

    @property
    def seconds(self) -> int:
        return int(self.targets.shape[0])


@attrs.frozen
class TrainingSet:
    """Labelled videos, one entry per video id; saved as one .npz file (no pickles)."""

    videos: tuple[LabelledVideo, ...] = attrs.field(converter=_videos)

    def __attrs_post_init__(self) -> None:
        ids = [v.video_id for v in self.videos]
        if len(set(ids)) != len(ids):
            raise InvalidInput("a training set holds each video once")

    def summary(self) -> dict[str, Any]:
        """What a model card and a training-run row say about the data."""
        seconds = sum(v.seconds for v in self.videos)
        positive = sum(float(v.targets.sum()) for v in self.videos)
        return {
            "videos": len(self.videos),
            "seconds": seconds,
            "positive_fraction": positive / seconds if seconds else 0.0,
            "features": list(FEATURE_COLUMNS),
        }

    def save(self, path: Path) -> None:
        lengths = np.array([v.seconds for v in self.videos], dtype=np.int64)

        def stacked(name: str, width: tuple[int, ...]) -> np.ndarray:
            parts = [getattr(v, name) for v in self.videos]
            return np.concatenate(parts) if parts else np.zeros((0, *width), dtype=np.float32)

        with path.open("wb") as out:
            np.savez(
                out,
                video_ids=np.array([v.video_id for v in self.videos], dtype=np.str_),
                lengths=lengths,
                features=stacked("features", (len(FEATURE_COLUMNS),)),
                targets=stacked("targets", ()),
                weights=stacked("weights", ()),
                columns=np.array(FEATURE_COLUMNS, dtype=np.str_),
            )

    @classmethod
    def load(cls, path: Path) -> TrainingSet:
        with np.load(path, allow_pickle=False) as data:
            columns = tuple(str(c) for c in data["columns"])
            if columns != FEATURE_COLUMNS:
                raise InvalidInput(f"{path} holds features {columns}, not {FEATURE_COLUMNS}")
            ends = np.cumsum(data["lengths"])
            starts = ends - data["lengths"]
            features, targets, weights = data["features"], data["targets"], data["weights"]
            return cls(
                LabelledVideo(str(vid), features[s:e], targets[s:e], weights[s:e])
                for vid, s, e in zip(data["video_ids"], starts, ends, strict=True)
            )


@attrs.frozen
class Split:
    train: tuple[LabelledVideo, ...]
    validation: tuple[LabelledVideo, ...]

    @property
    def train_ids(self) -> tuple[str, ...]:
        return tuple(v.video_id for v in self.train)

    @property
    def validation_ids(self) -> tuple[str, ...]:
        return tuple(v.video_id for v in self.validation)


def split_by_video(videos: Sequence[LabelledVideo], validation_fraction: float, seed: int) -> Split:
    """A seeded split of whole videos (never one in both parts), independent of the input's order.

    Each part keeps at least one video; the validation part gets ``round(fraction · videos)``.
    """
    if not 0 < validation_fraction < 1:
        raise InvalidOptions("the validation fraction must be between 0 and 1")
    ids = sorted({v.video_id for v in videos})
    if len(ids) < 2:
        raise InvalidInput("splitting by video needs at least two videos")
    held = min(max(1, round(validation_fraction * len(ids))), len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    validation = {ids[i] for i in order[:held]}
    ordered = sorted(videos, key=lambda v: v.video_id)
    return Split(
        train=tuple(v for v in ordered if v.video_id not in validation),
        validation=tuple(v for v in ordered if v.video_id in validation),
    )


def _positive(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        if not value > 0:
            raise InvalidOptions(f"{name} must be positive, not {value}")

    return check


def _within(name: str, low: float, high: float) -> Callable[[Any, Any, Any], None]:
    def check(_: Any, __: Any, value: Any) -> None:
        if not low <= value < high:
            raise InvalidOptions(f"{name} must be in [{low}, {high}), not {value}")

    return check


def _odd(_: Any, __: Any, value: int) -> None:
    if value < 1 or value % 2 == 0:
        raise InvalidOptions(f"kernel must be odd so scores stay aligned in time, not {value}")


def _precision(_: Any, __: Any, value: str) -> None:
    if value not in PRECISIONS:
        raise InvalidOptions(f"precision must be one of {', '.join(PRECISIONS)}, not {value!r}")


@attrs.frozen(kw_only=True)
class TrainingSettings:
    """How to train. ``batch_size`` is videos per optimizer step across all processes together, so the
    same settings give the same model on 1 or N processes; each process takes ``batch_size / processes``
    videos per step, in ``grad_accumulation`` micro-batches."""

    epochs: int = attrs.field(default=30, validator=_positive("epochs"))
    batch_size: int = attrs.field(default=8, validator=_positive("batch size"))
    learning_rate: float = attrs.field(default=3e-3, validator=_positive("learning rate"))
    weight_decay: float = attrs.field(default=1e-4, validator=_within("weight decay", 0.0, 1.0))
    grad_accumulation: int = attrs.field(default=1, validator=_positive("gradient accumulation steps"))
    max_grad_norm: float = attrs.field(default=1.0, validator=_positive("max gradient norm"))
    precision: str = attrs.field(default="auto", validator=_precision)
    seed: int = 0
    patience: int = attrs.field(default=5, validator=_positive("patience"))  # epochs without a better τ
    warmup_fraction: float = attrs.field(default=0.1, validator=_within("warmup fraction", 0.0, 1.0))
    validation_fraction: float = attrs.field(default=0.2, validator=_within("validation fraction", 0.01, 1.0))
    processes: int = attrs.field(default=1, validator=_positive("processes"))
    profile: bool = False
    pairs_per_video: int = attrs.field(default=4096, validator=_positive("pairs per video"))
    hidden: int = attrs.field(default=32, validator=_positive("hidden width"))
    kernel: int = attrs.field(default=7, validator=_odd)
    device: str = "auto"  # auto|cpu|cuda; under torchrun each process takes cuda:LOCAL_RANK
    version: str | None = None  # the new model's name; None: hl-<UTC time the run started>

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSettings:
        return cls(**data)


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _rank_inputs(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    s, y = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels, dtype=np.float64).ravel()
    if s.shape != y.shape:
        raise InvalidInput(f"{s.size} scores for {y.size} labels")
    if not (np.isfinite(s).all() and np.isfinite(y).all()):
        raise InvalidInput("scores and labels must be finite")
    if s.size < 2 or np.ptp(s) == 0 or np.ptp(y) == 0:
        return None  # nothing to rank: scipy would answer NaN
    return s, y


def kendall_tau(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Kendall's τ-b (ties allowed) of per-second scores against labels; 0.0 when either is constant."""
    return _correlation("kendalltau", scores, labels)


def spearman_rho(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Spearman's ρ of per-second scores against labels; 0.0 when either is constant."""
    return _correlation("spearmanr", scores, labels)


def _correlation(name: str, scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """scipy.stats' ``name`` statistic, finite. scipy is imported on first use: a second of imports that
    every `opusclip` command would otherwise pay."""
    pair = _rank_inputs(scores, labels)
    if pair is None:
        return 0.0
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return _finite(getattr(stats, name)(*pair).statistic)


def _merged_seconds(spans: Sequence[Span]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span.end))
        else:
            merged.append((span.start, span.end))
    return merged


def clip_f1(selected: Sequence[Span], highlights: Sequence[Span]) -> float:
    """F1 in seconds: precision = overlap / selected time, recall = overlap / highlight time (overlapping
    spans on either side count once); 0.0 when either side is empty."""
    picked, wanted = _merged_seconds(selected), _merged_seconds(highlights)
    overlap = sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in picked for s2, e2 in wanted)
    picked_total = sum(e - s for s, e in picked)
    wanted_total = sum(e - s for s, e in wanted)
    if overlap <= 0 or picked_total <= 0 or wanted_total <= 0:
        return 0.0
    precision, recall = overlap / picked_total, overlap / wanted_total
    return 2 * precision * recall / (precision + recall)


def highlight_spans(labels: npt.ArrayLike, threshold: float = 0.5) -> tuple[Span, ...]:
    """Runs of seconds whose label reaches ``threshold``; second i covers [i, i + 1)."""
    on = np.concatenate([[False], np.asarray(labels).ravel() >= threshold, [False]])
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return tuple(Span(float(a), float(b)) for a, b in zip(edges[::2], edges[1::2], strict=True))


@attrs.frozen
class VideoMetrics:
    kendall_tau: float
    spearman_rho: float
    clip_f1: float
    ranked: bool  # the labels vary, so τ and ρ say something
    has_highlight: bool  # some second reaches the highlight threshold, so F1 says something


@attrs.frozen
class Evaluation:
    """Means over videos: τ and ρ over videos whose labels vary, F1 over videos with a highlight."""

    kendall_tau: float = 0.0
    spearman_rho: float = 0.0
    clip_f1: float = 0.0
    videos: int = 0
    seconds: int = 0

    @classmethod
    def of(cls, per_video: Sequence[VideoMetrics], seconds: int = 0) -> Evaluation:
        ranked = [m for m in per_video if m.ranked]
        with_highlight = [m for m in per_video if m.has_highlight]

        def mean(values: list[float]) -> float:
            return _finite(float(np.mean(values))) if values else 0.0

        return cls(
            kendall_tau=mean([m.kendall_tau for m in ranked]),
            spearman_rho=mean([m.spearman_rho for m in ranked]),
            clip_f1=mean([m.clip_f1 for m in with_highlight]),
            videos=len(per_video),
            seconds=seconds,
        )

    def to_dict(self) -> dict[str, float | int]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        return cls(**data)


def score_video(
    scores: np.ndarray,
    video: LabelledVideo,
    options: ClipOptions = ClipOptions(),  # noqa: B008 - ClipOptions is frozen, sharing the default is safe
) -> VideoMetrics:
    """One video's metrics; its clips are what ``select_clips`` cuts from the scores (no transcript)."""
    highlights = highlight_spans(video.targets)
    selected = select_clips(scores, Transcript(), options=options, duration=float(video.seconds))
    return VideoMetrics(
        kendall_tau=kendall_tau(scores, video.targets),
        spearman_rho=spearman_rho(scores, video.targets),
        clip_f1=clip_f1([c.span for c in selected], highlights),
        ranked=bool(np.ptp(video.targets) > 0),
        has_highlight=bool(highlights),
    )


def evaluate(
    scores: Sequence[np.ndarray],
    videos: Sequence[LabelledVideo],
    options: ClipOptions = ClipOptions(),  # noqa: B008 - ClipOptions is frozen, sharing the default is safe
) -> Evaluation:
    """Per-second ``scores[i]`` of ``videos[i]`` against their labels."""
    if len(scores) != len(videos):
        raise InvalidInput(f"{len(scores)} score series for {len(videos)} videos")
    per_video = [score_video(s, v, options) for s, v in zip(scores, videos, strict=True)]
    return Evaluation.of(per_video, seconds=sum(v.seconds for v in videos))


def random_baseline(
    videos: Sequence[LabelledVideo],
    seed: int,
    options: ClipOptions = ClipOptions(),  # noqa: B008 - ClipOptions is frozen, sharing the default is safe
) -> Evaluation:
    """The metrics of uniformly random per-second scores: what a model must clearly beat."""
    rng = np.random.default_rng(seed)
    return evaluate([rng.random(v.seconds) for v in videos], videos, options)


@attrs.frozen
class EpochRecord:
    epoch: int
    loss: float
    kendall_tau: float
    learning_rate: float
    samples_per_second: float  # labelled seconds trained on per wall-clock second, all processes together

    def to_dict(self) -> dict[str, float | int]:
        return attrs.asdict(self)


@attrs.frozen(kw_only=True)
class TrainingResult:
    """What a run produced. Only the ``primary`` process (rank 0) may write registry rows; the artifact and
    card paths name the files rank 0 wrote (``<version>.safetensors`` and ``<version>.json``, the layout
    of MODEL_CACHE_DIR)."""

    version: str
    artifact: Path
    card: Path
    metrics: Evaluation  # the kept (best) model on the validation videos
    initial_metrics: Evaluation  # the starting model (the prior) on the same videos
    epochs_run: int
    best_epoch: int  # 0: no epoch beat the starting model, whose weights were kept
    samples_per_second: float
    primary: bool
    train_ids: tuple[str, ...] = attrs.field(converter=_ids)
    validation_ids: tuple[str, ...] = attrs.field(converter=_ids)
    start_epoch: int = 0  # epochs already done by the checkpoint a resumed run started from
    history: tuple[EpochRecord, ...] = attrs.field(default=(), converter=_records)
    trace: Path | None = None  # the torch.profiler trace, when asked for

    def to_dict(self) -> dict[str, Any]:
        return {
            **attrs.asdict(self, recurse=False),
            "artifact": str(self.artifact),
            "card": str(self.card),
            "trace": str(self.trace) if self.trace else None,
            "metrics": self.metrics.to_dict(),
            "initial_metrics": self.initial_metrics.to_dict(),
            "train_ids": list(self.train_ids),
            "validation_ids": list(self.validation_ids),
            "history": [h.to_dict() for h in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingResult:
        return cls(
            **{
                **data,
                "artifact": Path(data["artifact"]),
                "card": Path(data["card"]),
                "trace": Path(data["trace"]) if data.get("trace") else None,
                "metrics": Evaluation.from_dict(data["metrics"]),
                "initial_metrics": Evaluation.from_dict(data["initial_metrics"]),
                "history": tuple(EpochRecord(**h) for h in data.get("history", ())),
            }
        )

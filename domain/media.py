"""Value objects that describe a video, what was heard and seen in it, and the clips cut from it."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from domain.errors import InvalidOptions

# Per-second feature columns the analyzer produces (order is the matrix's column order).
MEDIA_FEATURES: tuple[str, ...] = (
    "brightness",
    "colourfulness",
    "motion",
    "shot_change",
    "loudness",
    "loudness_delta",
    "speech_prob",
)
# Per-second columns derived from the transcript (domain.text_features).
TEXT_FEATURES: tuple[str, ...] = ("speaking_rate", "pause", "sentence_end")


@attrs.frozen
class MediaInfo:
    duration: float
    width: int
    height: int
    fps: float
    video_codec: str
    audio_codec: str | None
    has_audio: bool
    size_bytes: int = 0
    format_name: str = ""
    # Clockwise degrees (0, 90, 180, 270) that stored frames turn for display (phone videos carry 90 or
    # 270); width and height above are the displayed size.
    rotation: int = 0
    # The container's first timestamp, in seconds: media time 0 is there (MPEG-TS and captures rarely
    # start at 0). Adapters subtract it from every pts they read and add it to every seek.
    start_time: float = 0.0

    @property
    def pixels(self) -> int:
        return self.width * self.height


@attrs.frozen
class Span:
    start: float
    end: float

    def __attrs_post_init__(self) -> None:
        if not (self.end >= self.start >= 0):
            raise ValueError(f"invalid span {self.start}..{self.end}")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, t: float) -> bool:
        return self.start <= t <= self.end


@attrs.frozen(eq=False)
class Analysis:
    """What the analyzer saw and heard: one row per second of video, plus cut and speech events."""

    info: MediaInfo
    columns: tuple[str, ...]
    features: np.ndarray  # shape (seconds, len(columns)), float32
    shot_cuts: tuple[float, ...]
    speech: tuple[Span, ...]

    def __attrs_post_init__(self) -> None:
        if self.features.ndim != 2 or self.features.shape[1] != len(self.columns):
            raise ValueError("feature matrix does not match its columns")

    @property
    def seconds(self) -> int:
        return int(self.features.shape[0])

    def column(self, name: str) -> np.ndarray:
        return self.features[:, self.columns.index(name)]


@attrs.frozen
class Word:
    text: str
    start: float
    end: float
    confidence: float = 1.0


@attrs.frozen
class Segment:
    """A stretch of speech as the recogniser phrased it (about a sentence), in media time."""

    text: str
    start: float
    end: float


@attrs.frozen
class Transcript:
    words: tuple[Word, ...] = ()
    language: str = "en"
    segments: tuple[Segment, ...] = ()

    def between(self, span: Span) -> tuple[Word, ...]:
        return tuple(w for w in self.words if w.start >= span.start and w.end <= span.end)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


class Aspect(enum.StrEnum):
    SOURCE = "source"
    VERTICAL = "9:16"
    SQUARE = "1:1"


CAPTION_FORMATS = frozenset({"srt", "vtt"})


def _aspect(value: str | Aspect) -> Aspect:
    try:
        return Aspect(value)
    except ValueError:
        choices = ", ".join(a.value for a in Aspect)
        raise InvalidOptions(f"aspect {value!r} is not one of {choices}") from None


def _caption_formats(value: Sequence[str] | frozenset[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class ClipOptions:
    min_seconds: float = 15.0
    max_seconds: float = 60.0
    max_clips: int = 5
    aspect: Aspect = attrs.field(default=Aspect.SOURCE, converter=_aspect)
    caption_formats: frozenset[str] = attrs.field(
        default=frozenset({"srt", "vtt"}), converter=_caption_formats
    )
    # Picks closer than this (seconds between one clip's end and the next one's start) are skipped while
    # the video offers anything else, so runner-ups do not hug the best clip.
    gap_seconds: float = 10.0
    burn_captions: bool = False  # render the captions into the picture, not only as .srt/.vtt files

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.min_seconds <= self.max_seconds:
            raise InvalidOptions("min length must be at least 1 s and not above max length")
        if self.max_seconds > 600:
            raise InvalidOptions("max length must be at most 600 s")
        if not 1 <= self.max_clips <= 50:
            raise InvalidOptions("max clips must be between 1 and 50")
        if not 0 <= self.gap_seconds <= 3600:
            raise InvalidOptions("gap must be between 0 and 3600 s")
        unknown = self.caption_formats - CAPTION_FORMATS
        if unknown:
            raise InvalidOptions(f"unknown caption format(s): {', '.join(sorted(unknown))}; use srt, vtt")

    def require_fits(self, duration: float) -> None:
        """A video shorter than the shortest clip asked for cannot give one: say so before any work."""
        if duration < self.min_seconds:
            raise InvalidOptions(
                f"the video is {duration:.1f} s long, shorter than the minimum clip length "
                f"({self.min_seconds:g} s); ask for shorter clips"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_seconds": self.min_seconds,
            "max_seconds": self.max_seconds,
            "max_clips": self.max_clips,
            "aspect": self.aspect.value,
            "caption_formats": sorted(self.caption_formats),
            "gap_seconds": self.gap_seconds,
            "burn_captions": self.burn_captions,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClipOptions:
        """Options from untrusted input: unknown keys and wrong types are InvalidOptions, never a crash."""
        allowed = {field.name for field in attrs.fields(cls)} | {"captions"}
        unknown = set(data) - allowed
        if unknown:
            raise InvalidOptions(f"unknown option(s): {', '.join(sorted(unknown))}")
        try:
            values: dict[str, Any] = {}
            for name in ("min_seconds", "max_seconds", "gap_seconds"):
                if name in data:
                    values[name] = _number(data[name], name)
            if "max_clips" in data:
                if isinstance(data["max_clips"], bool) or not isinstance(data["max_clips"], int):
                    raise InvalidOptions("max_clips must be an integer")
                values["max_clips"] = data["max_clips"]
            if "aspect" in data:
                values["aspect"] = _aspect(data["aspect"])
            if "burn_captions" in data:
                if not isinstance(data["burn_captions"], bool):
                    raise InvalidOptions("burn_captions must be true or false")
                values["burn_captions"] = data["burn_captions"]
            if "captions" in data and "caption_formats" in data:
                raise InvalidOptions("give captions or caption_formats, not both")
            if "caption_formats" in data:
                values["caption_formats"] = _formats(data["caption_formats"], "caption_formats")
            if "captions" in data:
                # The API's spelling: true (both formats), false (none) or a list of formats.
                captions = data["captions"]
                both = CAPTION_FORMATS if captions is True else frozenset()
                values["caption_formats"] = (
                    both if isinstance(captions, bool) else _formats(captions, "captions")
                )
        except (TypeError, ValueError) as error:
            raise InvalidOptions(f"invalid options: {error}") from None
        return cls(**values)


def _formats(value: Any, name: str) -> frozenset[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(f, str) for f in value):
        raise InvalidOptions(f'{name} must be a list of strings such as ["srt", "vtt"]')
    return frozenset(value)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidOptions(f"{name} must be a number")
    return float(value)


@attrs.frozen
class Clip:
    span: Span
    score: float
    rank: int
    words: tuple[Word, ...] = ()
    title: str = ""

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@attrs.frozen
class RenderedClip:
    clip: Clip
    media_path: str
    captions: dict[str, str] = attrs.field(factory=dict)  # format -> path

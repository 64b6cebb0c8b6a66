"""`opusclip clip` on a corpus of unusual and broken inputs it builds itself (tests.e2e.hostile_media).

Every input ends one of two ways: exit 0 with clips whose listed spans match what was rendered (each
clip's length, and the times stamped on its first and last pictures), or exit 2 with one line on stderr
and nothing left in or beside --out. Never a traceback, never a changed input, never a process of the
run left alive. Runs go two at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import av
import pytest

from adapters.media.synthetic import damage_packets
from tests.e2e.clip_runs import new_mark, survivors
from tests.e2e.hostile_media import (
    Audio,
    Video,
    cover_art_audio,
    declared_but_empty,
    mkv_with_lying_size,
    mp4_with_lying_duration,
    picture,
    read_stamp,
    write,
)

OPUSCLIP = [sys.executable, "-m", "entrypoints.cli"]
ARGS = ("--min", "2", "--max", "5", "--max-clips", "2", "--no-progress")
TOLERANCE = 0.06  # seconds: stamps are read back to the millisecond, clock edges round to a frame


@attrs.frozen
class Case:
    name: str
    make: Callable[[Path], Path]  # writes the input into a folder and returns its path
    expect: int | None = None  # 0 or 2 where the issue says which; None: either, done properly
    says: tuple[str, ...] = ()  # words one of which the refusal's line must hold
    fps: float | None = 25.0  # the stamped pictures' rate (None: unstamped); a frame's longest showing
    env: dict[str, str] = attrs.field(factory=dict)
    check: Callable[[Path, dict[str, Any]], None] | None = None  # more for a clipped input: (out, report)


def _bytes(data: bytes, name: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _one(
    name: str, *videos: Video, audios: tuple[Audio, ...] = (Audio(),), **kw: Any
) -> Callable[[Path], Path]:
    return lambda folder: write(folder / name, videos or (Video(),), audios, **kw)


def _ts_jump(forward: bool) -> Callable[[Path], Path]:
    """Two MPEG-TS recordings joined byte for byte; the second's clock jumps ahead (or back)."""

    def make(folder: Path) -> Path:
        first = write(folder / "a.ts", [Video()], [Audio()], container_format="mpegts", offset=100)
        second = write(
            folder / "b.ts",
            [Video()],
            [Audio()],
            container_format="mpegts",
            offset=5000 if forward else 0,
            stamp_from=6.0,
        )
        joined = folder / "joined.ts"
        joined.write_bytes(first.read_bytes() + second.read_bytes())
        first.unlink()
        second.unlink()
        return joined

    return make


def _cut(fraction: float, name: str, **kw: Any) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        whole = write(folder / f"whole-{name}", [Video()], [Audio()], **kw)
        data = whole.read_bytes()
        whole.unlink()
        path = folder / name
        path.write_bytes(data[: int(len(data) * fraction)])
        return path

    return make


def _appended_garbage(folder: Path) -> Path:
    path = write(folder / "tail.mp4", [Video()], [Audio()])
    with path.open("ab") as handle:
        handle.write(os.urandom(50_000))
    return path


def _damaged(every: int) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        whole = write(folder / "whole.mp4", [Video(options={"preset": "ultrafast", "g": "250"})], [Audio()])
        path = folder / f"damaged-{every}.mp4"
        damage_packets(whole, path, every=every)
        whole.unlink()
        return path

    return make


def _lying_duration(folder: Path) -> Path:
    whole = write(folder / "honest.mp4", [Video()], [Audio()])
    path = mp4_with_lying_duration(whole, folder / "lying.mp4")
    whole.unlink()
    return path


def _lying_size(folder: Path) -> Path:
    whole = write(folder / "honest.mkv", [Video()], [Audio()])
    path = mkv_with_lying_size(whole, folder / "lying.mkv")
    whole.unlink()
    return path


def _picture_is(width: int, height: int) -> Callable[[Path, dict[str, Any]], None]:
    def check(out: Path, report: dict[str, Any]) -> None:
        for clip in report["clips"]:
            with av.open(str(out / clip["file"])) as container:
                stream = container.streams.video[0]
                assert (stream.width, stream.height) == (width, height), "the wrong video stream was clipped"

    return check


def _speech_chosen(out: Path, report: dict[str, Any]) -> None:
    _picture_is(320, 180)(out, report)
    assert any(clip["words"] for clip in report["clips"]), "the silent audio track was chosen over speech"


CASES = (
    # Containers and codecs that clip.
    Case("mp4 h264 aac", _one("plain.mp4"), expect=0),
    Case("tone, no speech", _one("tone.mp4", Video(seconds=12), audios=(Audio(12),)), expect=0),
    Case(
        "mkv hevc opus", _one("hevc.mkv", Video(codec="libx265"), audios=(Audio(codec="libopus"),)), expect=0
    ),
    Case(
        "webm vp9 opus",
        _one("vp9.webm", Video(codec="libvpx-vp9"), audios=(Audio(codec="libopus"),)),
        expect=0,
    ),
    Case(
        "avi mpeg4 mp3",
        _one("mpeg4.avi", Video(codec="mpeg4"), audios=(Audio(codec="libmp3lame", rate=44_100),)),
        expect=0,
    ),
    Case(
        "mov mjpeg pcm",
        _one("mjpeg.mov", Video(codec="mjpeg", pix_fmt="yuvj420p"), audios=(Audio(codec="pcm_s16le"),)),
        expect=0,
    ),
    Case(
        "mov prores 10-bit 4:2:2",
        _one("prores.mov", Video(codec="prores_ks", pix_fmt="yuv422p10le")),
        expect=0,
    ),
    Case("ts mpeg2 mp2", _one("mpeg2.ts", Video(codec="mpeg2video"), audios=(Audio(codec="mp2"),)), expect=0),
    Case(
        "nut ffv1 flac",
        _one("ffv1.nut", Video(codec="ffv1", pix_fmt="bgr0"), audios=(Audio(codec="flac"),)),
        expect=0,
    ),
    Case(
        "flv sorenson mp3",
        _one("old.flv", Video(codec="flv"), audios=(Audio(codec="libmp3lame", rate=44_100),)),
        expect=0,
    ),
    Case("fragmented mp4", _one("frag.mp4", options={"movflags": "frag_keyframe+empty_moov"}), expect=0),
    # Pixel formats and picture sizes.
    Case("h264 4:4:4", _one("yuv444.mp4", Video(pix_fmt="yuv444p")), expect=0),
    Case("h264 10-bit", _one("high10.mkv", Video(pix_fmt="yuv420p10le")), expect=0),
    Case("odd size 321x241", _one("odd.mkv", Video(size=(321, 241), pix_fmt="yuv444p")), expect=0),
    Case("portrait", _one("portrait.mp4", Video(size=(180, 320))), expect=0),
    Case("16x16 picture", _one("tiny.mp4", Video(size=(16, 16))), fps=None),
    Case(
        "1x1 picture", _one("dot.mkv", Video(size=(1, 1), pix_fmt="yuv444p")), expect=2, says=("1x1", "1×1")
    ),
    Case("over the pixel limit", _one("big.mp4"), expect=2, env={"MAX_VIDEO_PIXELS": "10000"}),
    # Channel layouts, rates and streams.
    Case("7.1 audio", _one("a8ch.mp4", audios=(Audio(layout="7.1"),)), expect=0),
    Case("5.1 ac3", _one("ac3.mkv", audios=(Audio(codec="ac3", layout="5.1"),)), expect=0),
    Case(
        "mono 8 kHz", _one("mono.mkv", audios=(Audio(codec="pcm_s16le", layout="mono", rate=8000),)), expect=0
    ),
    Case("no audio", _one("silent.mp4", audios=()), expect=0),
    Case("audio outlasts video", _one("long-audio.mkv", Video(seconds=4), audios=(Audio(9),)), expect=0),
    Case("video outlasts audio", _one("short-audio.mkv", Video(seconds=8), audios=(Audio(3),)), expect=0),
    Case(
        "several streams",
        _one(
            "several.mkv",
            Video(size=(64, 36), default=False),
            Video(size=(320, 180)),
            audios=(Audio(sound="silence", default=False), Audio(sound="speech")),
        ),
        expect=0,
        check=_speech_chosen,
    ),
    Case("audio stream without packets", lambda f: declared_but_empty(f / "e.mkv", "audio"), expect=0),
    Case("video stream without packets", lambda f: declared_but_empty(f / "v.mkv", "video"), expect=2),
    # Timestamps.
    Case("variable frame rate", _one("vfr.mp4", Video(vfr=True)), expect=0, fps=25 / 1.6),
    Case("0.5 fps", _one("slow.mkv", Video(fps=0.5, seconds=8), audios=(Audio(8),)), expect=0, fps=0.5),
    Case("120 fps", _one("fast.mp4", Video(fps=120, size=(160, 90))), expect=0, fps=120),
    Case("starts at 1000 s", _one("late.mp4", offset=1000), expect=0),
    Case("ts clock jumps forward", _ts_jump(forward=True), expect=0),
    Case("ts clock jumps back", _ts_jump(forward=False), expect=0),
    # Damage and lies.
    Case("truncated mp4", _cut(0.5, "half.mp4")),
    Case("truncated ts", _cut(0.5, "half.ts", container_format="mpegts")),
    Case("garbage after the end", _appended_garbage),
    # A damaged picture cannot be shown (the one before it stays on screen): stamps prove nothing here.
    Case("a few damaged packets", _damaged(every=40), fps=None),
    Case("many damaged packets", _damaged(every=3), expect=2),
    Case("header claims 100 hours", _lying_duration),
    Case("header claims 7680 wide", _lying_size),
    # Not videos.
    Case("png still", lambda f: picture(f / "still.png", "png"), expect=2, says=("still", "image")),
    Case("jpeg still", lambda f: picture(f / "photo.jpg", "mjpeg"), expect=2, says=("still", "image")),
    Case(
        "animated webp",
        lambda f: picture(f / "anim.webp", "libwebp_anim", frames=20),
        expect=2,
        says=("animation", "animated", "image"),
    ),
    Case("animated gif", lambda f: picture(f / "anim.gif", "gif", frames=40), fps=None),
    Case("cover art and audio", lambda f: cover_art_audio(f / "song.mp3"), expect=2),
    Case("audio only", lambda f: write(f / "voice.m4a", (), (Audio(),), container_format="mp4"), expect=2),
    Case("too short", _one("blink.mp4", Video(seconds=0.6), audios=(Audio(0.6),)), expect=2),
    Case("zero bytes", _bytes(b"", "empty.mp4"), expect=2),
    Case("random bytes", _bytes(os.urandom(200_000), "noise.mp4"), expect=2),
    Case("text", _bytes(b"not a video at all\n" * 500, "notes.mp4"), expect=2),
)


@attrs.frozen
class Outcome:
    code: int
    stdout: str
    stderr: str
    source: Path
    run: Path  # holds --out and nothing else
    changed: bool  # the input's bytes changed
    survivors: tuple[str, ...]  # processes of the run still alive after it ended
    seconds: float


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _clip(case: Case, root: Path, models: Path) -> Outcome:
    folder = root / case.name.replace(" ", "-")
    (folder / "input").mkdir(parents=True)
    source = case.make(folder / "input")
    digest = _digest(source)
    run = folder / "run"
    run.mkdir()
    mark = new_mark()
    env = {
        **os.environ,
        "CACHE_ENABLED": "false",
        "MODEL_CACHE_DIR": str(models),
        "COLUMNS": "160",
        # Two runs share the machine: one thread each for the recogniser and torch, not one per core each.
        "MAX_WORKERS": "1",
        "OMP_NUM_THREADS": "1",
        **mark,
        **case.env,
    }
    started = time.monotonic()
    result = subprocess.run(
        [*OPUSCLIP, "clip", str(source), "--out", str(run / "out"), *ARGS],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    seconds = time.monotonic() - started
    left = tuple(survivors(mark))
    changed = _digest(source) != digest
    return Outcome(result.returncode, result.stdout, result.stderr, source, run, changed, left, seconds)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("corpus")
    models = tmp_path_factory.mktemp("corpus-models")
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda case: _clip(case, root, models), CASES))
    slowest = sorted(zip(done, CASES, strict=True), key=lambda pair: -pair[0].seconds)[:5]
    print("\nslowest:", ", ".join(f"{case.name} {outcome.seconds:.1f} s" for outcome, case in slowest))
    print(
        "refused:",
        ", ".join(case.name for case, outcome in zip(CASES, done, strict=True) if outcome.code == 2),
    )
    return {case.name: outcome for case, outcome in zip(CASES, done, strict=True)}


def test_the_corpus_is_large_and_its_names_unique() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_input_ends_cleanly(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.name]
    said = f"exit {outcome.code}; stderr: {outcome.stderr[-1500:]!r}"
    assert "Traceback" not in outcome.stderr + outcome.stdout, said
    assert not outcome.changed, "the input was written over"
    assert not outcome.survivors, f"processes of the run outlived it: {outcome.survivors}"
    if case.expect is not None:
        assert outcome.code == case.expect, said
    assert outcome.code in (0, 2), said
    if outcome.code == 2:
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("opusclip: "), said
        assert not outcome.stdout.strip(), outcome.stdout
        assert not list(outcome.run.iterdir()), "a refused run left files in or beside --out"
        if case.says:
            assert any(word.lower() in lines[0].lower() for word in case.says), said
        return
    out = outcome.run / "out"
    assert [p.name for p in outcome.run.iterdir()] == ["out"], "files beside --out"
    report = json.loads((out / "clips.json").read_text())
    assert report["clips"], "exit 0 without clips"
    listed = {"clips.json"}
    for clip in report["clips"]:
        listed |= {clip["file"], *clip["captions"].values()}
        _matches_its_listing(out / clip["file"], clip, case.fps)
    assert {p.name for p in out.iterdir()} == listed, "files in --out that the report does not list"
    if case.check is not None:
        case.check(out, report)


def _matches_its_listing(path: Path, clip: dict[str, Any], fps: float | None) -> None:
    """The clip lasts as long as its listing says, stream by stream, and (for stamped inputs) its first and
    last pictures are the source's pictures at the listed start and end."""
    start, end, duration = clip["start"], clip["end"], clip["duration"]
    where = f"{path.name} listed {start}–{end} s"
    with av.open(str(path)) as container:
        assert container.duration is not None, where
        assert abs(container.duration / av.time_base - duration) <= 0.25, (
            where,
            container.duration / av.time_base,
        )
        for stream in container.streams:
            if (
                stream.duration is not None
                and stream.time_base is not None
                and stream.type in ("video", "audio")
            ):
                length = float(stream.duration * stream.time_base)
                assert abs(length - duration) <= 0.3, (where, f"its {stream.type} lasts {length:.3f} s")
        if fps is None:
            return
        stamps = [read_stamp(frame.to_ndarray(format="rgb24")) / 1000 for frame in container.decode(video=0)]
    assert stamps, where
    shown = 1 / fps + TOLERANCE  # how long one source picture can stay on screen, and some rounding
    first, last = stamps[0], stamps[-1]
    assert start - shown < first <= start + TOLERANCE, (where, f"its first picture is from {first:.3f} s")
    assert end - shown < last <= end + TOLERANCE, (where, f"its last picture is from {last:.3f} s")
    assert stamps == sorted(stamps), (where, "its pictures are out of order")

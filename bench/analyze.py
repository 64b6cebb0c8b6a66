"""Analysis speed and memory against a plain full decode of the same file (and PySceneDetect, and ASR).

    python bench/analyze.py [--minutes 10] [--runs 3] [--skip-scenedetect]

Speech recognition has its own bench, bench/transcribe.py.

The test file (720p h264 with B-frames + aac, spoken scenes with cuts) is generated once into bench/out/.
Figures come from one run; the machine may be shared, so the load average is printed with them.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402  # after the sys.path line so the bench runs from a checkout without install

from adapters.media.analyzer import PyAVMediaAnalyzer  # noqa: E402  # same reason
from adapters.media.probe import MediaLimits  # noqa: E402  # same reason
from adapters.media.synthetic import demo_scenes, write_video  # noqa: E402  # same reason
from adapters.speech.vad import SileroVad  # noqa: E402  # same reason

OUT = ROOT / "bench" / "out"


def _generate(path: Path, minutes: float) -> None:
    # superfast keeps B-frames (ultrafast has none), so skipping non-reference frames is measured too.
    write_video(path, demo_scenes(minutes * 60), size=(1280, 720), preset="superfast", gop=250)


def ensure_media(minutes: float) -> Path:
    path = OUT / f"talk-{minutes:g}min-720p.mp4"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        tmp = path.with_suffix(".part.mp4")
        # A child process, so generation does not count towards this process's peak memory.
        child = multiprocessing.get_context("spawn").Process(target=_generate, args=(tmp, minutes))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit("generating the benchmark file failed")
        tmp.rename(path)
        print(f"generated {path.name} in {time.perf_counter() - start:.1f} s")
    return path


def plain_decode(path: Path, *, with_audio: bool) -> tuple[float, int]:
    """Every frame decoded with FFmpeg's own threading, nothing converted: the baseline.

    ``with_audio`` decodes the audio stream too, as ``ffmpeg -i F -f null -`` does.
    """
    start = time.perf_counter()
    frames = 0
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"
        streams = {"video": 0, "audio": 0} if with_audio and container.streams.audio else {"video": 0}
        for _ in container.decode(**streams):
            frames += 1
    return time.perf_counter() - start, frames


def scenedetect_time(path: Path) -> str:
    if importlib.util.find_spec("scenedetect") is None:
        return "PySceneDetect missing (make bench installs it with --no-deps)"
    from scenedetect import ContentDetector, detect

    start = time.perf_counter()
    scenes = detect(str(path), ContentDetector())
    return f"{time.perf_counter() - start:.1f} s, {max(len(scenes) - 1, 0)} cuts (every frame, full size)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--skip-scenedetect", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="timings are the best of this many runs")
    args = parser.parse_args()

    path = ensure_media(args.minutes)
    analyzer = PyAVMediaAnalyzer(MediaLimits(), vad=SileroVad())
    info = analyzer.probe(path)
    print(f"file: {path.name} {info.width}x{info.height} {info.fps:g} fps {info.duration:.0f} s")
    print(f"cpus: {os.cpu_count()}  load average before: {os.getloadavg()[0]:.2f}")

    path.read_bytes()  # warm the page cache, so the first timing does not pay for the disk
    runs = args.runs
    # Interleaved and best of N: on a shared 2-core machine the minimum is the least disturbed figure.
    video_s = full_s = analyze_s = float("inf")
    frames = 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(runs):
        seconds, frames = plain_decode(path, with_audio=False)
        video_s = min(video_s, seconds)
        full_s = min(full_s, plain_decode(path, with_audio=True)[0])
        start = time.perf_counter()
        analysis = analyzer.analyze(path, info)
        analyze_s = min(analyze_s, time.perf_counter() - start)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"best of {runs} runs each, interleaved:")
    speed = info.duration / video_s
    print(f"plain decode, video only:    {video_s:6.1f} s  ({frames} frames, {speed:.0f}x real time)")
    print(f"plain decode, video + audio: {full_s:6.1f} s  (what `ffmpeg -i F -f null -` does)")
    speed = info.duration / analyze_s
    print(f"analysis:                    {analyze_s:6.1f} s  ({speed:.0f}x real time, with VAD)")
    print(f"ratio analysis / plain decode (video + audio): {analyze_s / full_s:.2f}  (target <= 1.0)")
    print(f"ratio analysis / plain decode (video only):    {analyze_s / video_s:.2f}")
    print(
        f"memory: process max RSS {rss_after / 1024:.0f} MiB "
        f"(grew {max(0, rss_after - rss_before) / 1024:.0f} MiB during analysis; most of the rest is torch)"
    )
    print(f"found {len(analysis.shot_cuts)} cuts, {len(analysis.speech)} speech segments")
    if not args.skip_scenedetect:
        print(f"PySceneDetect ContentDetector: {scenedetect_time(path)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

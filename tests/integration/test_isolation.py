"""Isolation on real child processes: results, errors, crashes, hangs, memory, and no orphans."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import attrs
import av
import numpy as np
import pytest

from adapters.media.analyzer import PyAVMediaAnalyzer
from adapters.media.isolated import (
    IsolatedClipRenderer,
    IsolatedMediaAnalyzer,
    IsolatedTranscriber,
    IsolationLimits,
    analyzer_with_vad,
    renderer_with_faces,
)
from adapters.media.isolation import PRELOAD, Isolation
from adapters.media.probe import MediaLimits
from adapters.media.synthetic import Truth
from adapters.speech.vad import SileroVad
from adapters.speech.whisper import WhisperTranscriber
from adapters.speech.whisper_model import resolve
from domain.errors import (
    CorruptMedia,
    DependencyUnavailable,
    InvalidOptions,
    MediaError,
    MediaLimitExceeded,
    OpusClipError,
)
from domain.media import Analysis, Aspect, Clip, ClipOptions, MediaInfo, Span, Transcript, Word
from tests.integration import isolation_targets as targets

# A broken isolation tends to hang rather than fail: fail instead.
pytestmark = pytest.mark.timeout(60)

MiB = 1024**2
T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
LIMITS = IsolationLimits(memory_bytes=2048 * MiB, timeout_seconds=60.0, timeout_factor=2.0)


@pytest.fixture(scope="module")
def isolation() -> Iterator[Isolation]:
    # One for the module: multiprocessing keeps one forkserver per process, and starting it takes seconds.
    isolation = Isolation(preload=(*PRELOAD, targets.__name__))
    isolation.start()
    yield isolation
    isolation.close()


def run(
    isolation: Isolation,
    function: Callable[..., T],
    *args: object,
    memory_bytes: int = 512 * MiB,
    timeout_seconds: float = 30.0,
) -> T:
    return isolation.run(function, *args, memory_bytes=memory_bytes, timeout_seconds=timeout_seconds)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


def in_my_group() -> set[int]:
    """Live processes in this test run's process group: a descendant that lost its parent stays in it."""
    group, found = os.getpgid(0), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _, pgrp = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):  # not a process, or one that just ended
            continue
        if state != "Z" and int(pgrp) == group:
            found.add(int(entry.name))
    return found


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def pids(pid_file: Path) -> tuple[int, int]:
    assert wait_for(pid_file.exists, 15), "the isolated call never started"
    child, forkserver = pid_file.read_text().split()
    return int(child), int(forkserver)


def test_returns_the_value_and_forwards_progress_in_order_while_it_runs(isolation: Isolation) -> None:
    seen: list[tuple[float, float]] = []
    result = isolation.run(
        targets.count,
        20,
        0.03,
        memory_bytes=256 * MiB,
        timeout_seconds=30,
        progress=lambda fraction: seen.append((fraction, time.monotonic())),
    )
    returned = time.monotonic()

    assert result == 20
    assert [fraction for fraction, _ in seen] == [step / 20 for step in range(1, 21)]
    assert returned - seen[0][1] > 0.3  # the first report came while the child still worked
    assert run(isolation, targets.add, 2, 3) == 5


def test_children_start_with_the_heavy_modules_already_imported(isolation: Isolation) -> None:
    assert run(isolation, targets.imported, "torch")
    assert run(isolation, targets.imported, "adapters.media.analyzer")


@pytest.mark.parametrize("kind", [InvalidOptions, MediaLimitExceeded])
def test_an_opusclip_error_arrives_with_its_type_and_message(
    isolation: Isolation, kind: type[OpusClipError]
) -> None:
    with pytest.raises(kind) as raised:
        run(isolation, targets.raise_error, kind, "max clips must be between 1 and 50")

    assert type(raised.value) is kind
    assert raised.value.message == "max clips must be between 1 and 50"


def test_any_other_error_is_a_runtime_error_and_its_traceback_is_logged(
    isolation: Isolation, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError) as raised:
        run(isolation, targets.raise_error, KeyError, "frame 12")

    assert str(raised.value) == "KeyError: 'frame 12'"
    assert "in raise_error" in caplog.text


def test_a_segfault_is_corrupt_media_and_the_next_call_works(isolation: Isolation) -> None:
    with pytest.raises(CorruptMedia, match=r"the decoder crashed \(SIGSEGV\) on this file"):
        run(isolation, targets.segfault)

    assert run(isolation, targets.add, 1, 1) == 2


def test_a_hang_is_killed_at_its_deadline(isolation: Isolation, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(CorruptMedia, match=r"decoding did not finish within 1.5 s"):
        run(isolation, targets.hang, str(pid_file), timeout_seconds=1.5)

    assert time.monotonic() - started < 4
    child, _ = pids(pid_file)
    assert not alive(child)
    assert run(isolation, targets.add, 1, 2) == 3


def test_a_memory_hog_is_stopped_at_the_limit(isolation: Isolation) -> None:
    with pytest.raises(CorruptMedia, match=r"decoding needed more than 0.25 GiB of memory"):
        run(isolation, targets.hog, 4096 * MiB, memory_bytes=256 * MiB)

    assert run(isolation, targets.hog, 128 * MiB, memory_bytes=256 * MiB) == 2


def ffmpeg_refused(code: int) -> None:
    """What an adapter raises when FFmpeg fails inside it: its own error, from FFmpeg's."""
    try:
        av.error.err_check(-code)
    except av.FFmpegError as error:
        raise MediaError(f"cannot render clip 1: {error}") from error


@pytest.mark.parametrize("code", [errno.ENOMEM, errno.EAGAIN])
def test_ffmpeg_refused_memory_or_a_thread_under_the_limit_is_out_of_memory(
    isolation: Isolation, code: int
) -> None:
    """Under the limit FFmpeg fails to allocate (ENOMEM) or to start a thread, whose stack no longer fits
    (EAGAIN from pthread_create): the file needs more memory, whatever the adapter made of the error."""
    with pytest.raises(CorruptMedia, match=r"decoding needed more than 0.25 GiB of memory"):
        run(isolation, ffmpeg_refused, code, memory_bytes=256 * MiB)


def test_another_ffmpeg_error_stays_what_the_adapter_said(isolation: Isolation) -> None:
    with pytest.raises(MediaError, match="cannot render clip 1") as raised:
        run(isolation, ffmpeg_refused, errno.EINVAL)
    assert not isinstance(raised.value, CorruptMedia)


def test_calls_from_three_threads_run_side_by_side(isolation: Isolation) -> None:
    results: dict[int, tuple[int, int]] = {}

    def call(value: int) -> None:
        results[value] = run(isolation, targets.sleep_then_return, value, 1.0)

    started = time.monotonic()
    threads = [threading.Thread(target=call, args=(value,)) for value in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(results) == [0, 1, 2]
    assert [results[value][0] for value in range(3)] == [0, 1, 2]
    assert len({results[value][1] for value in range(3)}) == 3  # three children
    assert time.monotonic() - started < 2.5


def test_kill_all_stops_a_running_call_and_the_next_call_works(isolation: Isolation, tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    errors: list[BaseException] = []

    def call() -> None:
        try:
            run(isolation, targets.hang, str(pid_file))
        except BaseException as error:  # the test looks at whatever ended the call
            errors.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    child, _ = pids(pid_file)
    isolation.kill_all()
    caller.join(5)

    assert not caller.is_alive()
    assert [type(error) for error in errors] == [DependencyUnavailable]
    assert not alive(child)
    assert run(isolation, targets.add, 2, 2) == 4


def test_a_child_whose_parent_died_before_it_asked_to_die_with_it_exits(tmp_path: Path) -> None:
    survived = tmp_path / "survived"
    # The middle process forks and exits at once; its child asks only once it has been handed to a reaper.
    code = (
        "import os, sys, time\n"
        "from adapters.process_guard import die_with_parent\n"
        "if os.fork() == 0:\n"
        "    time.sleep(0.3)\n"
        "    die_with_parent()\n"
        "    open(sys.argv[1], 'w').close()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(survived)], cwd=ROOT, check=True, timeout=30)

    assert not wait_for(survived.exists, 1.5)


@contextlib.contextmanager
def parent_process(scenario: str, pid_file: Path) -> Iterator[subprocess.Popen[str]]:
    """A process with an isolated call in flight (``isolation_targets.main``); on the way out, whatever
    a failing test left alive is killed."""
    code = "from tests.integration.isolation_targets import main; main()"
    parent = subprocess.Popen(
        [sys.executable, "-c", code, scenario, str(pid_file)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        yield parent
    finally:
        parent.kill()
        parent.wait()
        for pid in map(int, pid_file.read_text().split() if pid_file.exists() else ()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_no_child_outlives_a_parent_killed_with_sigkill(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    before = in_my_group()
    with parent_process("sleep", pid_file) as parent:
        child, forkserver = pids(pid_file)
        assert alive(child) and alive(forkserver)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)

        assert wait_for(lambda: not alive(child) and not alive(forkserver), 5)
        assert wait_for(lambda: in_my_group() <= before, 5)  # nothing else it started either


def test_close_kills_a_call_in_flight_and_stops_the_forkserver(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    with parent_process("close", pid_file) as parent:
        out, _ = parent.communicate(timeout=30)
        child, forkserver = pids(pid_file)
        ended = json.loads(out)

        assert ended["error"] == "DependencyUnavailable"
        assert ended["seconds"] < 2
        assert ended["afterwards"] == "DependencyUnavailable"
        assert not alive(child) and not alive(forkserver)


# ---------------------------------------------------------------- the ports


def test_a_port_builds_its_adapter_in_the_child_and_closes_it_there(
    isolation: Isolation, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    transcriber = IsolatedTranscriber(
        functools.partial(targets.NotingTranscriber, str(notes)), isolation, LIMITS
    )
    notes.unlink()  # reading the version built (and closed) one here
    info = MediaInfo(2.0, 64, 36, 25.0, "h264", None, has_audio=False)
    analysis = Analysis(info, ("loudness",), np.zeros((2, 1), np.float32), (), ())

    transcript = transcriber.transcribe(tmp_path / "any.mp4", analysis)

    assert transcriber.version == "noting-1"
    assert transcript == Transcript((Word("hello", 0.0, 0.5),))
    (child, first), (closer, then) = (line.split() for line in notes.read_text().splitlines())
    assert (first, then) == ("transcribe", "close")
    assert child == closer != str(os.getpid())


# ---------------------------------------------------------------- the ports over the real adapters


@pytest.fixture(scope="module")
def in_process(sample_video: tuple[Path, Truth]) -> Analysis:
    path, _ = sample_video
    analyzer = PyAVMediaAnalyzer(MediaLimits(), vad=SileroVad())
    return analyzer.analyze(path, analyzer.probe(path))


def test_the_isolated_analyzer_sees_what_the_in_process_one_sees(
    isolation: Isolation, sample_video: tuple[Path, Truth], in_process: Analysis
) -> None:
    path, _ = sample_video
    analyzer = IsolatedMediaAnalyzer(functools.partial(analyzer_with_vad, MediaLimits()), isolation, LIMITS)
    reports: list[float] = []

    info = analyzer.probe(path)
    analysis = analyzer.analyze(path, info, reports.append)

    assert analyzer.version == PyAVMediaAnalyzer(vad=SileroVad()).version
    assert info == in_process.info
    assert analysis.columns == in_process.columns
    np.testing.assert_allclose(analysis.features, in_process.features, atol=1e-5)
    assert analysis.shot_cuts == in_process.shot_cuts
    assert analysis.speech == in_process.speech
    assert reports and reports == sorted(reports) and reports[-1] == 1.0


def test_the_isolated_renderer_renders_a_playable_clip(
    isolation: Isolation, sample_video: tuple[Path, Truth], in_process: Analysis, tmp_path: Path
) -> None:
    path, _ = sample_video
    renderer = IsolatedClipRenderer(renderer_with_faces, isolation, LIMITS)
    clip = Clip(Span(2.0, 7.0), score=0.9, rank=1, title="welcome")

    rendered = renderer.render(
        path, in_process.info, clip, ClipOptions(min_seconds=1, aspect=Aspect.VERTICAL), tmp_path
    )

    assert rendered.clip == clip
    with av.open(rendered.media_path) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        assert (video.width, video.height) == (202, 360)
        assert video.average_rate is not None
        assert frames == pytest.approx(5.0 * float(video.average_rate), abs=2)
    assert set(rendered.captions) == {"srt", "vtt"}


def test_the_isolated_transcriber_hears_words_and_leaves_no_process_behind(
    isolation: Isolation, sample_video: tuple[Path, Truth], in_process: Analysis
) -> None:
    path, _ = sample_video
    model = resolve("tiny.en")
    transcriber = IsolatedTranscriber(
        functools.partial(WhisperTranscriber, model, threads=1), isolation, LIMITS
    )
    before = in_my_group()

    first_sentence = attrs.evolve(in_process, speech=in_process.speech[:1])  # keeps recognition short

    transcript = transcriber.transcribe(path, first_sentence)

    assert transcriber.version == WhisperTranscriber(model, threads=1).version
    with WhisperTranscriber(model, threads=1) as here:
        assert transcript == here.transcribe(path, first_sentence)
    assert {"back", "show."} <= {word.text.lower() for word in transcript.words}
    # The child and any process it started were gone with it.
    assert wait_for(lambda: in_my_group() <= before, 5)

"""Speech recognition speed: the real-time factor of `WhisperTranscriber` on speech-dense audio.

    python bench/transcribe.py [--minutes 5] [--runs 2] [--chunk 29] [--threads N] [--compute-type int8]

The test file (continuous espeak-ng speech, short pauses between sentences, aac in an m4a) is generated
once into bench/out/. Each run transcribes the whole file as `opusclip transcribe` does: decode, find the
speech (silero-vad), cut it into chunks at pauses, recognise; the real-time factor divides the audio's
duration, measured from the samples decoded in the same run, by the run's wall time. Target: >= 20x on
a 2-core machine. The machine may be shared, so the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.media.synthetic import SPEECH_RATE, speak  # noqa: E402  # after the sys.path line, as in analyze.py
from adapters.speech.audio import audio_analysis, stream_audio  # noqa: E402  # same reason
from adapters.speech.vad import SAMPLE_RATE  # noqa: E402  # same reason
from adapters.speech.whisper import WhisperTranscriber  # noqa: E402  # same reason

OUT = ROOT / "bench" / "out"
TEXT = (
    "Good morning everyone, and thank you for coming.",
    "Today I want to talk about how small teams build products that people love.",
    "The first lesson is simple: listen to your users before you write any code.",
    "Second, ship something small every week, and measure what happens.",
    "Third, never be afraid to throw away work that does not help.",
    "When we started this company, we had three people and one idea.",
    "We made many mistakes, but we learned something from every one of them.",
    "Our first customer found us through a blog post about databases.",
    "She asked for a feature we did not have, so we built it in two days.",
    "That feature is still the one our users mention most often.",
    "What does this tell us about planning?",
    "It tells us that the plan matters less than the speed of learning.",
    "Now let me show you the numbers from last year.",
    "Revenue doubled, while the team grew by only four people.",
    "Support tickets went down, because the product became easier to use.",
    "Of course, not everything worked out the way we hoped.",
    "We tried to enter a new market too early, and we paid for it.",
    "The lesson there was to finish one thing before starting the next.",
    "So where do we go from here?",
    "We will keep listening, keep shipping, and keep measuring.",
    "If you remember one thing from this talk, remember to ask why.",
    "Thank you very much, and I am happy to take your questions.",
)


def ensure_speech(minutes: float) -> Path:
    path = OUT / f"speech-{minutes:g}min.m4a"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.default_rng(11)
    voices = {(text, wpm): speak(text, words_per_minute=wpm) for text in TEXT for wpm in (160, 185)}
    pieces: list[np.ndarray] = []
    total, i = 0, 0
    while total < minutes * 60 * SPEECH_RATE:
        voice = voices[(TEXT[i % len(TEXT)], 160 if (i // len(TEXT)) % 2 == 0 else 185)]
        pause = np.zeros(int(rng.uniform(0.15, 0.45) * SPEECH_RATE), np.float32)
        pieces += [voice * (0.5 / max(float(np.abs(voice).max()), 1e-3)), pause]
        total += voice.size + pause.size
        i += 1
    audio = np.concatenate(pieces)[: int(minutes * 60 * SPEECH_RATE)]
    audio += np.random.default_rng(3).normal(0, 0.002, audio.size).astype(np.float32)  # room tone
    tmp = path.with_suffix(".part.m4a")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SPEECH_RATE, layout="mono")
        for start in range(0, audio.size, 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start : start + 1024], format="flt", layout="mono")
            frame.sample_rate = SPEECH_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    tmp.rename(path)
    print(f"generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=2, help="timings are the best of this many runs")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--chunk", type=float, default=29.0, help="seconds of audio per recognition chunk")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads in all (0: every core)")
    parser.add_argument("--compute-type", default="auto")
    args = parser.parse_args()

    path = ensure_speech(args.minutes)
    duration = sum(block.size for block in stream_audio(path)) / SAMPLE_RATE  # what was really decoded
    print(f"file: {path.name} ({duration:.1f} s of speech-dense audio); cpus: {os.cpu_count()}")

    started = time.perf_counter()
    transcriber = WhisperTranscriber.open(
        args.model, compute_type=args.compute_type, threads=args.threads, chunk_seconds=args.chunk
    )
    loaded = time.perf_counter() - started
    print(f"model {transcriber.version}: hashed and loaded in {loaded:.2f} s ({transcriber.workers} workers)")
    best = float("inf")
    words = 0
    with transcriber:
        for run in range(args.runs):
            load = os.getloadavg()[0]
            started = time.perf_counter()
            transcript = transcriber.transcribe(path, audio_analysis(path))
            elapsed = time.perf_counter() - started
            words = len(transcript.words)
            rate = duration / elapsed
            print(f"run {run + 1}: {elapsed:.1f} s = {rate:.1f}x real time (load average before: {load:.2f})")
            best = min(best, elapsed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"best: {best:.1f} s for {duration:.1f} s of audio, {words} words ({words / duration * 60:.0f}/min)"
    )
    print(f"real-time factor: {duration / best:.1f}x (target >= 20x); process peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()

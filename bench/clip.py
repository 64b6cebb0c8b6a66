"""The whole `opusclip clip` run against the video's own duration, with the process tree's peak memory.

    python bench/clip.py [--minutes 10] [--clips 5]

Runs the real CLI (analysis, speech recognition, scoring, five rendered clips) as a child process on the
same generated 720p file as bench/analyze.py, with an empty cache, and samples the resident memory of the
CLI and its recognition workers together. Targets: wall time <= 15% of the video's duration; peak < 1 GiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from analyze import ensure_media  # noqa: E402  # a sibling script, importable once its folder is on the path


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker that exited between listing and reading
            total += proc.memory_info().rss
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=5)
    args = parser.parse_args()

    path = ensure_media(args.minutes)
    duration = args.minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "CACHE_DIR": str(Path(scratch) / "cache")}
        command = [
            sys.executable,
            "-m",
            "entrypoints.cli",
            "clip",
            str(path),
            "--out",
            str(Path(scratch) / "out"),
        ]
        command += ["--max-clips", str(args.clips), "--no-progress"]
        print(f"file: {path.name} ({duration:.0f} s); cpus: {os.cpu_count()}; load {os.getloadavg()[0]:.2f}")
        start = time.perf_counter()
        child = subprocess.Popen(command, env=env, cwd=BENCH.parent, stdout=subprocess.PIPE, text=True)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            process = psutil.Process(child.pid)
            while not done.is_set():
                try:
                    peak = max(peak, _tree_rss(process))
                except psutil.Error:
                    return
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = child.communicate()
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        if child.returncode != 0:
            raise SystemExit(f"opusclip clip failed with exit code {child.returncode}")
        timings = (Path(scratch) / "out" / "clips.json").read_text()

    stages = json.loads(timings)["timings"]
    print(output.strip().splitlines()[-1])
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items()))
    print(
        f"whole run: {elapsed:.1f} s for {duration:.0f} s of video = {elapsed / duration:.1%} of its duration"
    )
    print(f"ratio run / duration: {elapsed / duration:.3f} (target <= 0.15)")
    print(f"peak memory, CLI + workers: {peak / 2**20:.0f} MiB (target < 1024 MiB)")


if __name__ == "__main__":
    main()

"""Training throughput: labelled seconds per second for one and two processes on CPU, and on a GPU with and
without mixed precision where CUDA is available, one run each.

    python bench/train.py [--videos 128] [--seconds 600] [--epochs 4]

Trains the default HighlightNet (TorchTrainer, the same code `opusclip train` runs) on random features,
with the same total batch in every configuration, and prints a table and the 2-process / 1-process
ratio. Throughput counts the seconds of video trained on per wall-clock second of training steps (not
validation), all processes together, averaged over the epochs. Two processes get one thread each
(torchrun's default); one process gets torch's default thread count, and once a single thread, so the
table separates process parallelism from thread parallelism.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import attrs
import numpy as np
import structlog
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.torch.trainer import TorchTrainer  # the repository root is on the path now
from domain.training import (
    FEATURE_COLUMNS,
    LabelledVideo,
    TrainingSet,
    TrainingSettings,
)


def random_videos(count: int, seconds: int) -> TrainingSet:
    rng = np.random.default_rng(0)
    return TrainingSet(
        LabelledVideo(
            f"v{i}",
            rng.random((seconds, len(FEATURE_COLUMNS))),
            (rng.random(seconds) < 0.2).astype(np.float32),
            np.ones(seconds),
        )
        for i in range(count)
    )


def run(data: TrainingSet, settings: TrainingSettings, threads: int | None = None) -> tuple[float, float]:
    """(samples per second, wall seconds of the whole call)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            result = TorchTrainer().train(data, settings, Path(scratch))
            return result.samples_per_second, time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=128)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    data = random_videos(args.videos, args.seconds)
    base = TrainingSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        patience=args.epochs,
        validation_fraction=0.05,
        device="cpu",
        precision="fp32",
    )
    print(
        f"{args.videos} videos × {args.seconds} s, {args.epochs} epochs, batch {args.batch_size}; "
        f"cpus: {os.cpu_count()}; torch threads: {torch.get_num_threads()}; load {os.getloadavg()[0]:.2f}"
    )
    rows: list[tuple[str, float, float]] = []
    rows.append(("cpu, 1 process", *run(data, base)))
    rows.append(("cpu, 1 process, 1 thread", *run(data, base, threads=1)))
    rows.append(("cpu, 2 processes (gloo)", *run(data, attrs.evolve(base, processes=2))))
    if torch.cuda.is_available():
        gpu = attrs.evolve(base, device="cuda")
        name = torch.cuda.get_device_name()
        rows.append((f"{name}, fp32", *run(data, gpu)))
        rows.append((f"{name}, mixed precision (auto)", *run(data, attrs.evolve(gpu, precision="auto"))))
    else:
        print("no CUDA device: GPU rows skipped")

    width = max(len(name) for name, _, _ in rows)
    print(f"{'configuration':<{width}}  {'samples/s':>10}  {'wall s':>7}")
    for name, rate, wall in rows:
        print(f"{name:<{width}}  {rate:>10.0f}  {wall:>7.1f}")
    one, one_thread, two = (rows[i][1] for i in range(3))
    print(f"ratio 2 processes / 1 process: {two / one:.2f}")
    print(f"ratio 2 processes / 1 process on 1 thread: {two / one_thread:.2f}")
    if len(rows) == 5:
        print(f"ratio mixed precision / fp32 on GPU: {rows[4][1] / rows[3][1]:.2f}")


if __name__ == "__main__":
    main()

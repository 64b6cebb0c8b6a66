"""``opusclip train`` (a scheduled training run) and ``opusclip eval`` (versions side by side).

train exits 0 when a version was trained (promoted or not) and when there was too little new feedback to
train (it says so), 1 when the run failed, 2 on bad input. Under torchrun every process runs it; rank 0
alone writes the run, the registry row and the files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from application.config import AppConfig
from domain.errors import InvalidInput, OpusClipError
from domain.labels import Annotation, parse_tvsum
from domain.training import TrainingSettings
from entrypoints.console import fail, progress_bars


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser(
        "train", help="retrain the highlight model on users' ratings; promote it if it measures better"
    )
    train.add_argument("--epochs", type=int, default=None, help="at most this many (default: TRAIN_EPOCHS)")
    train.add_argument("--batch-size", type=int, default=None, help="videos per optimizer step")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate")
    train.add_argument(
        "--precision", default=None, help="auto, fp32, bf16 or fp16 (default: TRAIN_PRECISION)"
    )
    train.add_argument("--processes", type=int, default=None, help="data-parallel processes on this machine")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--resume", action="store_true", help="go on with the last interrupted or failed run")
    train.add_argument("--force", action="store_true", help="train even with little new feedback")
    train.add_argument("--profile", action="store_true", help="write a torch.profiler trace with the run")
    train.add_argument(
        "--annotations", type=Path, default=None, help="TVSum-style annotation file (video, category, scores)"
    )
    train.add_argument("--run", dest="run_id", default=None, help="a queued training run to carry out")
    train.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    evaluate = commands.add_parser(
        "eval", help="a model version, the active one and random scores side by side on labelled data"
    )
    evaluate.add_argument(
        "--version", default=None, help="the version to judge (default: the run's candidate)"
    )
    evaluate.add_argument("--run", dest="run_id", default=None, help="judge on this run's held-out videos")
    evaluate.add_argument("--annotations", type=Path, default=None, help="TVSum-style annotation file")
    evaluate.add_argument(
        "--out", type=Path, default=None, help="write the JSON report here (never over a file)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the random baseline")


def _settings(config: AppConfig, args: argparse.Namespace) -> TrainingSettings:
    base = training_settings(config)
    changes: dict[str, Any] = {
        name: value
        for name, value in (
            ("epochs", args.epochs),
            ("batch_size", args.batch_size),
            ("learning_rate", args.lr),
            ("precision", args.precision),
            ("processes", args.processes),
            ("seed", args.seed),
        )
        if value is not None
    }
    if args.profile:
        changes["profile"] = True
    return attrs.evolve(base, **changes)


def training_settings(config: AppConfig) -> TrainingSettings:
    return TrainingSettings(
        epochs=config.train_epochs, processes=config.train_processes, precision=config.train_precision
    )


def _annotations(path: Path | None) -> dict[str, Annotation] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: cannot read the annotation file ({error.__class__.__name__})") from None
    try:
        return parse_tvsum(text)
    except InvalidInput as error:
        raise InvalidInput(f"{path}: {error}") from None


@contextlib.contextmanager
def progress_bar(label: str, *, enabled: bool) -> Iterator[Callable[[float], None]]:
    """A bar on stderr while ``enabled`` and stderr is a terminal; the callback is safe from any thread."""
    if not (enabled and sys.stderr.isatty()):
        yield lambda _fraction: None
        return
    with progress_bars(show=True) as bar:
        task = bar.add_task(label, total=1.0)
        yield lambda fraction: bar.update(task, completed=min(1.0, max(0.0, fraction)))


def _log_to_stderr(config: AppConfig) -> None:
    """Structured logs (one per epoch) on stderr; stdout keeps the one-line outcome and the report table."""
    from entrypoints.http.logging import configure_logging

    configure_logging(config.log_level, config.log_format, stream=sys.stderr)


def _launch_id() -> str | None:
    """torchrun's id of this launch, shared by all its processes (None outside a multi-process launch)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return os.environ.get("TORCHELASTIC_RUN_ID") or "torchrun"


def _primary() -> bool:
    """Rank 0, or not launched by torchrun at all."""
    return os.environ.get("RANK", "0") == "0"


def run_train(config: AppConfig, args: argparse.Namespace) -> int:
    _log_to_stderr(config)
    try:
        settings = _settings(config, args)
        annotations = _annotations(args.annotations)
    except (OpusClipError, ValueError) as error:
        return fail(str(error))
    return asyncio.run(_train(config, args, settings, annotations))


async def _train(
    config: AppConfig,
    args: argparse.Namespace,
    settings: TrainingSettings,
    annotations: dict[str, Annotation] | None,
) -> int:
    from application.train_model import TrainModel
    from entrypoints.bootstrap import build_training_container
    from entrypoints.lifecycle import Lifecycle

    container = build_training_container(config)
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        with progress_bar("training", enabled=not args.no_progress and _primary()) as progress:
            outcome = await container[TrainModel](
                args.run_id,
                settings=settings,
                annotations=annotations,
                resume=args.resume,
                force=args.force,
                primary=_primary(),
                launch_id=_launch_id(),
                progress=progress,
            )
    except InvalidInput as error:
        return fail(str(error))
    except OpusClipError as error:
        print(f"opusclip: training failed: {error}", file=sys.stderr)
        return 1
    finally:
        await lifecycle.close()
    if outcome.run is not None:
        print(f"{outcome.message} (training run {outcome.run.id})")
    return 0


def run_eval(config: AppConfig, args: argparse.Namespace) -> int:
    _log_to_stderr(config)
    if args.out is not None and args.out.exists():
        return fail(f"{args.out} exists; choose another --out (reports never replace a file)")
    try:
        annotations = _annotations(args.annotations)
    except OpusClipError as error:
        return fail(str(error))
    return asyncio.run(_eval(config, args, annotations))


async def _eval(
    config: AppConfig, args: argparse.Namespace, annotations: dict[str, Annotation] | None
) -> int:
    from application.train_model import EvaluateModels
    from entrypoints.bootstrap import build_training_container
    from entrypoints.lifecycle import Lifecycle

    container = build_training_container(config)
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        report = await container[EvaluateModels](
            args.version, run_id=args.run_id, annotations=annotations, seed=args.seed
        )
    except OpusClipError as error:
        return fail(str(error))
    finally:
        await lifecycle.close()
    _print_table(report)
    if args.out is not None:
        try:
            with args.out.open("x", encoding="utf-8") as out:
                json.dump(report, out, indent=2, sort_keys=True)
        except OSError as error:
            return fail(f"{args.out}: cannot write the report ({error.strerror or error})")
    return 0


def _print_table(report: dict[str, Any]) -> None:
    rows = [(name, report[name]) for name in ("candidate", "active", "random") if name in report]
    print(f"{len(report['videos'])} labelled videos")
    print(f"{'':10} {'version':28} {'kendall_tau':>12} {'spearman_rho':>13} {'clip_f1':>8}")
    for name, entry in rows:
        m = entry["metrics"]
        print(
            f"{name:10} {entry['version']:28} {m['kendall_tau']:12.3f} {m['spearman_rho']:13.3f} "
            f"{m['clip_f1']:8.3f}"
        )

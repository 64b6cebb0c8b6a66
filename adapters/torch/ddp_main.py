"""The process torchrun starts for each rank of a training run, and the guard that starts torchrun.

Each rank (what torchrun runs; multi-node runs start it the same way, with a shared out dir)::

    torchrun --nnodes 2 --nproc-per-node 4 ... -m adapters.torch.ddp_main \\
        --training set.npz --settings settings.json --out DIR [--resume] [--result result.json]

trains with ``TorchTrainer`` and, on rank 0, writes the result as JSON. ``launch`` is what
``TorchTrainer`` starts for ``settings.processes > 1``: it asks the kernel to kill it when the training
process dies, then runs torchrun in-process (``--standalone``, one machine) on the rank arguments after
``--``; every rank likewise dies with torchrun.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from adapters.process_guard import die_with_parent

_AGENT_PID = "OPUSCLIP_TRAINING_AGENT_PID"


def _rank(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.torch.ddp_main")
    parser.add_argument("--training", type=Path, required=True, help="a TrainingSet .npz file")
    parser.add_argument("--settings", type=Path, required=True, help="TrainingSettings as JSON")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--result", type=Path, help="where rank 0 writes its TrainingResult as JSON")
    parser.add_argument("--progress", type=Path, help="where rank 0 keeps the fraction done")
    args = parser.parse_args(argv)
    if _AGENT_PID in os.environ:
        die_with_parent(parent=int(os.environ[_AGENT_PID]))

    # Imported after the guard: torch takes a while to import, and an orphan must not wait for it.
    from adapters.torch.trainer import TorchTrainer
    from domain.training import TrainingSet, TrainingSettings

    def report(fraction: float) -> None:
        if args.progress is not None:
            tmp = args.progress.with_name(f".{args.progress.name}.tmp")
            tmp.write_text(f"{fraction:.6f}")
            os.replace(tmp, args.progress)

    settings = TrainingSettings.from_dict(json.loads(args.settings.read_text()))
    result = TorchTrainer().train(TrainingSet.load(args.training), settings, args.out, report, args.resume)
    if result.primary and args.result is not None:
        tmp = args.result.with_name(f".{args.result.name}.tmp")
        tmp.write_text(json.dumps(result.to_dict(), indent=2))
        os.replace(tmp, args.result)


def _launch(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m adapters.torch.ddp_main launch")
    parser.add_argument("--parent", type=int, required=True, help="the pid this launcher must not outlive")
    parser.add_argument("--nproc", type=int, required=True)
    parser.add_argument("rank_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    die_with_parent(parent=args.parent)
    os.environ[_AGENT_PID] = str(os.getpid())  # torchrun's agent is this process; ranks die with it
    from torch.distributed import run

    rank_args = args.rank_args[1:] if args.rank_args[:1] == ["--"] else args.rank_args
    run.main(
        ["--standalone", "--nproc-per-node", str(args.nproc), "-m", "adapters.torch.ddp_main", *rank_args]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["launch"]:
        _launch(argv[1:])
    else:
        _rank(argv)


if __name__ == "__main__":
    main()

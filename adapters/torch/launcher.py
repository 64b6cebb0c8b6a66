"""Training in N processes on one machine from one call: ``launch`` starts torchrun as a child.

The training set and settings are written to ``out_dir``; the child (``python -m adapters.torch.ddp_main
launch``) runs in its own process group, dies with this process (PR_SET_PDEATHSIG, and its ranks with it),
and is stopped (SIGTERM, then SIGKILL) when the call ends by an exception. Rank 0 keeps the fraction done in
``PROGRESS`` and writes its result to ``RESULT``, which ``launch`` reads back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import attrs

from domain.ports import Progress, no_progress
from domain.training import TrainingResult, TrainingSet, TrainingSettings

# Files of a launched multi-process run, in out_dir.
TRAINING_SET = "training_set.npz"
SETTINGS = "settings.json"
RESULT = "result.json"
PROGRESS = "progress"
_STOP_GRACE_SECONDS = 15.0


@attrs.frozen
class World:
    """This process's place among torchrun's ranks (rank 0 of 1 outside torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def primary(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> World:
        env = os.environ
        if "WORLD_SIZE" not in env:
            return cls()
        return cls(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0")))


def under_launcher() -> bool:
    return "WORLD_SIZE" in os.environ


def launch(
    training: TrainingSet,
    settings: TrainingSettings,
    out_dir: Path,
    progress: Progress = no_progress,
    resume: bool = False,
) -> TrainingResult:
    """Runs ``settings.processes`` processes under torchrun (one machine) and returns rank 0's result.

    The child runs in its own process group, dies with this process (PR_SET_PDEATHSIG, and its workers
    with it), and is stopped (SIGTERM, then SIGKILL) when this call ends by an exception.
    """
    if settings.version is None:  # named here, so a resume of this launch finds the same name
        settings = attrs.evolve(settings, version=f"hl-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}")
    data, config, result, progress_file = (
        out_dir / TRAINING_SET,
        out_dir / SETTINGS,
        out_dir / RESULT,
        out_dir / PROGRESS,
    )
    if resume and config.is_file():  # the interrupted launch named the version: keep its name
        settings = attrs.evolve(settings, version=json.loads(config.read_text())["version"])
    training.save(data)
    config.write_text(json.dumps(settings.to_dict()))
    for stale in (result, progress_file):
        stale.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "adapters.torch.ddp_main",
        "launch",
        "--parent",
        str(os.getpid()),
        "--nproc",
        str(settings.processes),
        "--",
        *["--training", str(data), "--settings", str(config), "--out", str(out_dir)],
        *["--result", str(result), "--progress", str(progress_file)],
        *(["--resume"] if resume else []),
    ]
    child = subprocess.Popen(command, start_new_session=True)
    try:
        reported = -1.0
        while child.poll() is None:
            with contextlib.suppress(OSError, ValueError):  # not written yet, or caught mid-replace
                fraction = float(progress_file.read_text())
                if fraction != reported:
                    reported = fraction
                    progress(fraction)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.25)
    finally:
        _stop(child)
    if child.returncode != 0 or not result.is_file():
        raise RuntimeError(f"distributed training exited with status {child.returncode}; see its log")
    progress(1.0)
    return TrainingResult.from_dict(json.loads(result.read_text()))


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)  # torchrun stops its workers on SIGTERM
    try:
        child.wait(timeout=_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # its workers die with it (die_with_parent)
        child.wait()

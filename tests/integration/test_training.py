"""TorchTrainer on generated videos (tests.training_data): learning, processes, resume, profile, precision."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import numpy as np
import psutil
import pytest
import torch
from safetensors.torch import load_file

from adapters.torch.highlight_net import FEATURE_NAMES, HighlightNet
from adapters.torch.launcher import PROGRESS
from adapters.torch.model_manager import ModelManager
from adapters.torch.trainer import CHECKPOINT, TorchTrainer
from domain.errors import InvalidOptions
from domain.training import (
    TrainingResult,
    TrainingSet,
    TrainingSettings,
    evaluate,
    random_baseline,
    split_by_video,
)
from tests.training_data import training_set

REPO = Path(__file__).resolve().parents[2]
SMALL = TrainingSettings(epochs=3, batch_size=4, hidden=8, pairs_per_video=512, patience=100, version="small")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # Models this small run far faster on one thread than on two contended ones (other tests share the CPUs).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def videos() -> TrainingSet:
    return training_set(40, 120, seed=1)


@pytest.fixture(scope="module")
def few_videos() -> TrainingSet:
    return training_set(20, 100, seed=2)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_a_training_set_round_trips_through_one_file(few_videos, tmp_path) -> None:
    few_videos.save(tmp_path / "set.npz")
    loaded = TrainingSet.load(tmp_path / "set.npz")
    assert [v.video_id for v in loaded.videos] == [v.video_id for v in few_videos.videos]
    for a, b in zip(loaded.videos, few_videos.videos, strict=True):
        assert np.array_equal(a.features, b.features) and np.array_equal(a.targets, b.targets)
        assert np.array_equal(a.weights, b.weights)
    assert loaded.summary() == few_videos.summary()


def test_training_lifts_kendall_tau_above_the_prior_and_random_scores(videos, tmp_path) -> None:
    settings = TrainingSettings(
        epochs=8, batch_size=4, hidden=16, pairs_per_video=1024, patience=3, validation_fraction=0.25
    )
    result = TorchTrainer().train(videos, settings, tmp_path)

    validation = split_by_video(videos.videos, 0.25, settings.seed).validation
    trained, prior = result.metrics.kendall_tau, result.initial_metrics.kendall_tau
    chance = random_baseline(validation, seed=0).kendall_tau
    print(f"\nvalidation Kendall's tau: trained {trained:.3f}, prior {prior:.3f}, random {chance:.3f}")
    assert trained > prior + 0.25 and trained > chance + 0.25, (trained, prior, chance)
    assert result.best_epoch > 0 and result.primary
    assert set(result.validation_ids) == {v.video_id for v in validation}
    assert not set(result.train_ids) & set(result.validation_ids)

    # The version is servable as it stands: the model manager finds it, loads it and scores as reported.
    manager = ModelManager(tmp_path, device="cpu")
    assert manager.available() == [result.version]
    assert result.artifact == manager.weights_path(result.version) and result.card.is_file()
    model = manager.load(result.version)
    assert model.version == result.version
    with torch.inference_mode():
        scores = [model(torch.from_numpy(v.features)[None]).squeeze(0).numpy() for v in validation]
    assert evaluate(scores, validation).kendall_tau == pytest.approx(trained, abs=1e-6)
    card = json.loads(result.card.read_text())
    assert card["metrics"]["kendall_tau"] == pytest.approx(trained)
    assert card["initial_metrics"]["kendall_tau"] == pytest.approx(prior)
    assert card["training_data"]["videos"] == 40 and card["training_data"]["validation_ids"]
    assert card["settings"]["learning_rate"] == settings.learning_rate
    assert card["training"]["best_epoch"] == result.best_epoch
    json.dumps(card, allow_nan=False)


def test_two_processes_train_the_same_model_as_one_with_the_same_total_batch(few_videos, tmp_path) -> None:
    one = TorchTrainer().train(few_videos, SMALL, tmp_path / "one")
    seen: list[float] = []
    two = TorchTrainer().train(few_videos, attrs.evolve(SMALL, processes=2), tmp_path / "two", seen.append)

    difference = max_difference(weights(one.artifact), weights(two.artifact))
    moved = float(weights(one.artifact)["residual.4.weight"].abs().max())
    print(f"\n1 vs 2 processes: largest weight difference {difference:.2e} (weights moved by {moved:.2e})")
    assert moved > 1e-3  # training really changed the model, so agreeing means something
    assert difference < 1e-5
    assert two.primary and two.version == one.version == "small"
    assert two.metrics.kendall_tau == pytest.approx(one.metrics.kendall_tau, abs=1e-5)
    assert two.validation_ids == one.validation_ids
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_gradient_accumulation_gives_the_same_model_as_one_big_batch(few_videos, tmp_path) -> None:
    whole = TorchTrainer().train(few_videos, SMALL, tmp_path / "whole")
    halves = TorchTrainer().train(few_videos, attrs.evolve(SMALL, grad_accumulation=2), tmp_path / "halves")
    assert max_difference(weights(whole.artifact), weights(halves.artifact)) < 1e-5


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(
    few_videos, tmp_path
) -> None:
    settings = attrs.evolve(SMALL, epochs=4)
    whole = TorchTrainer().train(few_videos, settings, tmp_path / "whole")

    def stop_in_the_third_epoch(fraction: float) -> None:
        if fraction > 2.4 / 4:
            raise Interrupted

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupted):
        TorchTrainer().train(few_videos, settings, out, stop_in_the_third_epoch)
    saved = torch.load(out / CHECKPOINT, weights_only=True)
    assert saved["state"]["epoch"] == 2

    resumed = TorchTrainer().train(few_videos, settings, out, resume=True)
    assert resumed.start_epoch == 2 and resumed.epochs_run == 4

    def course(result: TrainingResult) -> list[tuple[float, ...]]:
        return [(h.epoch, h.loss, h.kendall_tau, h.learning_rate) for h in result.history]

    assert course(resumed) == course(whole)
    assert max_difference(weights(resumed.artifact), weights(whole.artifact)) == 0.0

    with pytest.raises(InvalidOptions, match="learning_rate"):
        TorchTrainer().train(few_videos, attrs.evolve(settings, learning_rate=0.1), out, resume=True)


def test_profiling_writes_a_trace(few_videos, tmp_path) -> None:
    result = TorchTrainer().train(few_videos, attrs.evolve(SMALL, epochs=1, profile=True), tmp_path)
    assert result.trace is not None and result.trace.parent == tmp_path
    assert json.loads(result.trace.read_text())["traceEvents"]


def test_fp16_on_cpu_is_refused_before_any_work_and_bf16_runs(few_videos, tmp_path) -> None:
    with pytest.raises(InvalidOptions, match="fp16 mixed precision needs a CUDA device"):
        TorchTrainer().train(few_videos, attrs.evolve(SMALL, precision="fp16", device="cpu"), tmp_path / "16")
    assert not any((tmp_path / "16").iterdir())

    settings = attrs.evolve(SMALL, epochs=1, precision="bf16", device="cpu")
    result = TorchTrainer().train(few_videos, settings, tmp_path / "bf16")
    assert json.loads(result.card.read_text())["training"]["precision"] == "bfloat16"


def test_a_padded_batch_scores_each_video_as_it_scores_alone() -> None:
    torch.manual_seed(0)
    model = HighlightNet(hidden=8)
    last = model.residual[-1]
    assert isinstance(last, torch.nn.Conv1d)
    torch.nn.init.normal_(last.weight)
    short, long = torch.randn(1, 30, len(FEATURE_NAMES)) * 3, torch.randn(1, 50, len(FEATURE_NAMES)) * 3
    batch = torch.zeros(2, 50, len(FEATURE_NAMES))
    batch[0, :30], batch[1] = short[0], long[0]
    mask = torch.zeros(2, 50, dtype=torch.bool)
    mask[0, :30], mask[1] = True, True
    with torch.inference_mode():
        together = model(batch, mask)
        assert torch.allclose(together[0, :30], model(short)[0], atol=1e-5)
        assert torch.allclose(together[1], model(long)[0], atol=1e-5)


STOPPED_TRAINING = """
import signal
import sys
import time
from pathlib import Path
from adapters.torch.trainer import TorchTrainer
from domain.training import TrainingSettings
from tests.training_data import training_set


def stop(signum, frame):
    raise SystemExit("stopped")  # what a command does on SIGTERM: unwind, so cleanup code runs


signal.signal(signal.SIGTERM, stop)
settings = TrainingSettings(epochs=500, batch_size=2, hidden=8, patience=1000, processes=2)
try:
    TorchTrainer().train(training_set(20, 100, seed=2), settings, Path(sys.argv[1]))
except SystemExit:
    Path(sys.argv[1], "unwound").touch()
    time.sleep(120)  # the trainer lives on: only its own cleanup can have stopped the ranks
"""


def _processes_of(out: Path, but: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        mentions = str(out) in " ".join(process.info["cmdline"] or ())
        if mentions and process.pid != but and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "terminated"])
def test_no_training_process_outlives_a_stopped_trainer(how, tmp_path) -> None:
    """SIGKILL: the kernel kills torchrun and then its ranks (die_with_parent). SIGTERM: the trainer
    unwinds and stops torchrun, which stops its ranks, while the trainer's process lives on."""
    out = tmp_path / "run"
    trainer = subprocess.Popen([sys.executable, "-c", STOPPED_TRAINING, str(out)], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not (out / PROGRESS).is_file():  # the ranks are training
            assert trainer.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        assert len(_processes_of(out, but=trainer.pid)) >= 3  # torchrun and two ranks
        os.kill(trainer.pid, how)
        if how == signal.SIGKILL:
            trainer.wait(timeout=30)
        deadline = time.monotonic() + 30
        while (left := _processes_of(out, but=trainer.pid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not left, [p.info["cmdline"] for p in left]
        if how == signal.SIGTERM:
            # The ranks go first, then the trainer's own unwinding finishes: give it its moment.
            while not (out / "unwound").is_file() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert trainer.poll() is None and (out / "unwound").is_file()
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
        for process in _processes_of(
            out, but=trainer.pid
        ):  # a failed run must not leave its orphans training
            with contextlib.suppress(psutil.Error):
                process.kill()

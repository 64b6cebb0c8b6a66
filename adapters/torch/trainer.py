"""TorchTrainer: the Trainer port. Fine-tunes HighlightNet's residual on labelled videos.

Loss. Within each video, a pairwise logistic (RankNet) loss over sampled pairs of seconds: for seconds i, j
with targets t_i > t_j, ``softplus(-(s_i - s_j))`` weighted by ``w_i · w_j · (t_i - t_j)``. Validation is
judged by Kendall's τ, which only asks whether each pair is in the right order within a video; this loss
asks exactly that, and leaves the score's scale and offset (the prior's z units) alone, where a
per-second BCE would spend the residual on calibrating them. Pairs (``pairs_per_video`` per video and
epoch) are drawn from a generator seeded by (seed, epoch, video), so the loss does not depend on which
process sees a video or on a resume.

Schedule. AdamW over the residual (the prior has no parameters), linear warm-up over
``warmup_fraction`` of the optimizer steps, then cosine decay to zero (LambdaLR); gradients clipped to
``max_grad_norm``. Epoch 0 is the starting model (the prior): if no epoch beats its validation τ, its
weights are kept, and patience counts epochs since the best one.

Batches. ``batch_size`` videos per optimizer step across all processes; each process takes its share in
``grad_accumulation`` padded micro-batches (HighlightNet's mask makes padding exact). Videos are dealt to
processes by DistributedSampler (same seeded permutation everywhere), so 1 and N processes train on the
same batches. Throughput is counted in labelled seconds per second, all processes together.

Processes. Under torchrun (WORLD_SIZE in the environment) every process calls ``train``: gloo on CPU,
NCCL on CUDA; rank 0 alone writes checkpoints, logs, the model and its card. Outside torchrun,
``settings.processes > 1`` starts torchrun as a child (``adapters.torch.launcher``) that dies with this
process, and returns rank 0's result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import structlog
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from adapters.torch.device import choose_device
from adapters.torch.highlight_net import FEATURE_NAMES, HighlightNet
from adapters.torch.launcher import World, launch, under_launcher
from adapters.torch.model_manager import ModelManager
from domain.errors import InvalidInput, InvalidOptions
from domain.ports import Progress, no_progress
from domain.training import (
    FEATURE_COLUMNS,
    EpochRecord,
    Evaluation,
    LabelledVideo,
    TrainingResult,
    TrainingSet,
    TrainingSettings,
    VideoMetrics,
    score_video,
    split_by_video,
)

log = structlog.get_logger(__name__)

CHECKPOINT = "checkpoint.pt"
TRACE = "trace.json"
# Settings a resumed run may change: they decide where and how fast, never which model comes out. The
# version is the checkpoint's (a resume may leave it unset, and may not rename it).
_FREE_ON_RESUME = ("processes", "profile", "device", "precision", "version")
_MIN_IMPROVEMENT = 1e-4

assert FEATURE_COLUMNS == FEATURE_NAMES, "training data and the model must agree on the feature order"


def resolve_precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``requested`` on ``device``; None means plain float32.

    auto: bf16 on CUDA where supported, else fp16; fp32 elsewhere. fp16 off CUDA is refused: CPU kernels
    for it are slow or missing and a grad scaler buys nothing there.
    """
    if requested == "fp32":
        return None
    if device.type == "cuda":
        if requested == "fp16" or (requested == "auto" and not torch.cuda.is_bf16_supported()):
            return torch.float16
        return torch.bfloat16
    if requested == "fp16":
        raise InvalidOptions(f"fp16 mixed precision needs a CUDA device, not {device.type}; use bf16 or fp32")
    return torch.bfloat16 if requested == "bf16" else None


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@attrs.frozen
class _Batch:
    x: torch.Tensor  # (videos, seconds, features), zero-padded
    mask: torch.Tensor  # (videos, seconds) bool, real seconds first
    first: torch.Tensor  # (videos, pairs) second indices
    second: torch.Tensor
    sign: torch.Tensor  # (videos, pairs) +1 where first should outrank second, -1 the other way
    weight: torch.Tensor  # (videos, pairs) w_i · w_j · |t_i - t_j|
    seconds: int


def _pairs(video: LabelledVideo, count: int, seed: int, epoch: int, index: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng([seed, epoch, index])
    i, j = rng.integers(0, video.seconds, size=(2, count))
    gap = video.targets[i] - video.targets[j]
    return i, j, np.sign(gap), video.weights[i] * video.weights[j] * np.abs(gap)


def _collate(
    videos: Sequence[LabelledVideo], indices: Sequence[int], settings: TrainingSettings, epoch: int
) -> _Batch:
    chosen = [videos[i] for i in indices]
    longest = max(v.seconds for v in chosen)
    x = np.zeros((len(chosen), longest, len(FEATURE_NAMES)), dtype=np.float32)
    mask = np.zeros((len(chosen), longest), dtype=bool)
    pairs = [
        _pairs(v, settings.pairs_per_video, settings.seed, epoch, i)
        for v, i in zip(chosen, indices, strict=True)
    ]
    for row, video in enumerate(chosen):
        x[row, : video.seconds] = video.features
        mask[row, : video.seconds] = True
    first, second, sign, weight = (np.stack(part) for part in zip(*pairs, strict=True))
    return _Batch(
        x=torch.from_numpy(x),
        mask=torch.from_numpy(mask),
        first=torch.from_numpy(first),
        second=torch.from_numpy(second),
        sign=torch.from_numpy(sign.astype(np.float32)),
        weight=torch.from_numpy(weight.astype(np.float32)),
        seconds=sum(v.seconds for v in chosen),
    )


def ranking_loss(scores: torch.Tensor, batch: _Batch) -> torch.Tensor:
    """Mean over videos of the weighted pairwise logistic loss (float32 whatever the autocast)."""
    scores = scores.float()
    margin = batch.sign * (scores.gather(1, batch.first) - scores.gather(1, batch.second))
    per_video = (batch.weight * F.softplus(-margin)).sum(1) / batch.weight.sum(1).clamp_min(1e-12)
    return per_video.mean()


def _to(batch: _Batch, device: torch.device) -> _Batch:
    def move(t: torch.Tensor) -> torch.Tensor:
        return t.to(device, non_blocking=True)

    return _Batch(
        x=move(batch.x),
        mask=move(batch.mask),
        first=move(batch.first),
        second=move(batch.second),
        sign=move(batch.sign),
        weight=move(batch.weight),
        seconds=batch.seconds,
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def _rng_state() -> dict[str, Any]:
    numpy_state: Any = np.random.get_state()  # the legacy global generator, which other code may use
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], numpy_state[1].tolist(), *map(float, numpy_state[2:])],
        "python": [version, list(internal), gauss],
    }


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save_atomically(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fingerprint(settings: TrainingSettings) -> dict[str, Any]:
    return {k: v for k, v in settings.to_dict().items() if k not in _FREE_ON_RESUME}


@attrs.define
class _State:
    """Everything a checkpoint carries besides the model, optimizer, scheduler and scaler."""

    version: str
    created: str
    initial: Evaluation
    best_tau: float
    best_epoch: int
    best_model: dict[str, torch.Tensor]
    stale: int = 0
    epoch: int = 0
    history: list[EpochRecord] = attrs.field(factory=list)


class TorchTrainer:
    """The Trainer port on torch (see the module for the loss, schedule and processes)."""

    def train(
        self,
        training: TrainingSet,
        settings: TrainingSettings,
        out_dir: Path,
        progress: Progress = no_progress,
        resume: bool = False,
    ) -> TrainingResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        if settings.processes > 1 and not under_launcher():
            return launch(training, settings, out_dir, progress, resume)
        return _Run(training, settings, out_dir, progress, resume).execute()


class _Run:
    def __init__(
        self,
        training: TrainingSet,
        settings: TrainingSettings,
        out_dir: Path,
        progress: Progress,
        resume: bool,
    ) -> None:
        self.settings = settings
        self.out_dir = out_dir
        self.progress = progress
        self.resume = resume
        self.world = World.from_env()
        self.split = split_by_video(training.videos, settings.validation_fraction, settings.seed)
        self.training = training
        self.device = self._device()
        self.dtype = resolve_precision(settings.precision, self.device)
        self.manager = ModelManager(out_dir, device="cpu")
        if settings.version is not None:
            try:
                self.manager.weights_path(settings.version)
            except ValueError as error:
                raise InvalidOptions(str(error)) from error
        share = self.world.size * settings.grad_accumulation
        usable = len(self.split.train) // share * share
        if usable == 0:
            raise InvalidInput(
                f"{len(self.split.train)} training videos cannot feed {self.world.size} process(es) × "
                f"{settings.grad_accumulation} accumulation step(s)"
            )
        if settings.batch_size < share:
            raise InvalidOptions(f"batch size {settings.batch_size} is smaller than processes × accumulation")
        # Each process takes an equal whole share of every step; a set smaller than a batch trains on all.
        self.batch_size = min(settings.batch_size // share * share, usable)
        if self.batch_size != settings.batch_size and self.world.primary:
            log.warning("training.batch_size_adjusted", asked=settings.batch_size, using=self.batch_size)
        self.steps_per_epoch = len(self.split.train) // self.batch_size
        self.total_steps = settings.epochs * self.steps_per_epoch
        self.warmup_steps = round(settings.warmup_fraction * self.total_steps)

    def _device(self) -> torch.device:
        device = choose_device(self.settings.device)
        if device.type == "cuda" and self.world.size > 1:
            device = torch.device("cuda", self.world.local_rank)
            torch.cuda.set_device(device)
        return device

    def execute(self) -> TrainingResult:
        joined = False
        if self.world.size > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=self.world.rank, world_size=self.world.size)
            joined = True
        try:
            return self._train()
        finally:
            if joined:
                dist.destroy_process_group()

    # ------------------------------------------------------------------ set-up

    def _train(self) -> TrainingResult:
        settings = self.settings
        _seed_everything(settings.seed)
        net = HighlightNet(hidden=settings.hidden, kernel=settings.kernel).to(self.device)
        # A ranking loss cannot see a constant offset: the output bias gets only rounding noise as its
        # gradient, which Adam would turn into full-size random steps. It stays at zero.
        offset = net.residual[-1].bias
        assert offset is not None
        offset.requires_grad_(False)
        model: torch.nn.Module = net
        if self.world.size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(net, device_ids=ids)
        optimizer = torch.optim.AdamW(
            [p for p in net.parameters() if p.requires_grad],
            lr=settings.learning_rate,
            weight_decay=settings.weight_decay,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, self.warmup_steps, self.total_steps)
        )
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)
        checkpoint = self.out_dir / CHECKPOINT
        state: _State
        if self.resume and checkpoint.is_file():
            state = self._restore(checkpoint, net, optimizer, scheduler, scaler)
            if settings.version not in (None, state.version):
                raise InvalidOptions(
                    f"cannot resume {checkpoint} as {settings.version}: it trains {state.version}"
                )
            if self.world.primary:
                log.info("training.resumed", epoch=state.epoch, version=state.version)
        else:
            if self.resume and self.world.primary:
                log.warning("training.no_checkpoint", path=str(checkpoint))
            initial = self._evaluate(net)
            created = self._agree(dt.datetime.now(dt.UTC).isoformat())
            version = settings.version or f"hl-{dt.datetime.fromisoformat(created):%Y%m%d-%H%M%S}"
            state = _State(version, created, initial, initial.kendall_tau, 0, _cpu_state(net))
        start_epoch = state.epoch
        sampler: DistributedSampler[int] = DistributedSampler(
            range(len(self.split.train)),  # type: ignore[arg-type]  # any sized sequence of indices will do
            num_replicas=self.world.size,
            rank=self.world.rank,
            shuffle=True,
            seed=settings.seed,
            drop_last=True,
        )
        trained_seconds, training_time, trace = 0, 0.0, None
        for epoch in range(start_epoch + 1, settings.epochs + 1):
            if state.stale >= settings.patience:
                break
            sampler.set_epoch(epoch)
            profiling = settings.profile and trace is None and self.world.primary
            with self._profiler(profiling) as profiler:
                loss, seconds, elapsed = self._epoch(
                    model, list(sampler), epoch, optimizer, scheduler, scaler, profiler
                )
            if profiling:
                trace = self.out_dir / TRACE
                profiler.export_chrome_trace(str(trace))
            trained_seconds += seconds
            training_time += elapsed
            metrics = self._evaluate(net)
            record = EpochRecord(
                epoch=epoch,
                loss=loss,
                kendall_tau=metrics.kendall_tau,
                learning_rate=float(scheduler.get_last_lr()[0]),
                samples_per_second=seconds / elapsed if elapsed > 0 else 0.0,
            )
            state.history.append(record)
            state.epoch = epoch
            if metrics.kendall_tau > state.best_tau + _MIN_IMPROVEMENT:
                state.best_tau, state.best_epoch, state.best_model = (
                    metrics.kendall_tau,
                    epoch,
                    _cpu_state(net),
                )
                state.stale = 0
            else:
                state.stale += 1
            if self.world.primary:
                log.info(
                    "training.epoch", **record.to_dict(), best_epoch=state.best_epoch, version=state.version
                )
                self._checkpoint(checkpoint, state, net, optimizer, scheduler, scaler)
        if self.world.primary:
            self.progress(1.0)  # early stopping ends a run before its last planned step
        return self._finish(state, net, start_epoch, trained_seconds, training_time, trace)

    def _agree(self, value: str) -> str:
        """Rank 0's value on every rank (the run's creation time names the version)."""
        if self.world.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return str(box[0])

    @contextlib.contextmanager
    def _profiler(self, enabled: bool) -> Iterator[Any]:
        if not enabled:
            yield None
            return
        activities = [torch.profiler.ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities, record_shapes=True) as profiler:
            yield profiler

    # ------------------------------------------------------------------ one epoch

    def _epoch(
        self,
        model: torch.nn.Module,
        order: list[int],
        epoch: int,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
        profiler: Any,
    ) -> tuple[float, int, float]:
        """Trains one epoch; returns (mean loss, labelled seconds, wall seconds), all processes together."""
        settings = self.settings
        per_process = self.batch_size // self.world.size
        micro = per_process // settings.grad_accumulation
        model.train()
        # Loss sum, steps, labelled seconds; kept on the device so that no step waits to read a loss.
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)
        started = time.perf_counter()
        for step in range(self.steps_per_epoch):
            mine = order[step * per_process : (step + 1) * per_process]
            for part in range(settings.grad_accumulation):
                batch = _to(
                    _collate(self.split.train, mine[part * micro : (part + 1) * micro], settings, epoch),
                    self.device,
                )
                # DDP averages gradients once per step, on the last micro-batch's backward.
                accumulating = self.world.size > 1 and part < settings.grad_accumulation - 1
                with model.no_sync() if accumulating else contextlib.nullcontext():  # type: ignore[operator]
                    with self._autocast():
                        scores = model(batch.x, batch.mask)
                    loss = ranking_loss(scores, batch) / settings.grad_accumulation
                    scaler.scale(loss).backward()
                totals[0] += loss.detach()
                totals[2] += batch.seconds
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            totals[1] += 1
            if profiler is not None:
                profiler.step()
            if self.world.primary:
                done = (epoch - 1) * self.steps_per_epoch + step + 1
                self.progress(min(1.0, done / self.total_steps))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - started
        if self.world.size > 1:
            dist.all_reduce(totals)
            totals[:2] /= self.world.size  # every process ran the same steps; its loss is a share's mean
        loss_sum, steps, seconds = totals.tolist()
        return loss_sum / max(steps, 1.0), int(seconds), elapsed

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # ------------------------------------------------------------------ validation

    def _evaluate(self, net: HighlightNet) -> Evaluation:
        """Validation metrics; each process scores its share of the videos and all see the same totals."""
        net.eval()
        videos = self.split.validation
        mine: list[tuple[int, VideoMetrics]] = []
        with torch.inference_mode():
            for index in range(self.world.rank, len(videos), self.world.size):
                video = videos[index]
                x = torch.from_numpy(video.features).unsqueeze(0).to(self.device)
                with self._autocast():
                    scores = net(x).float().squeeze(0).cpu().numpy()
                mine.append((index, score_video(scores, video)))
        net.train()
        gathered: list[list[tuple[int, VideoMetrics]]] = [mine]
        if self.world.size > 1:
            gathered = [[] for _ in range(self.world.size)]
            dist.all_gather_object(gathered, mine)
        per_video = [m for _, m in sorted((p for part in gathered for p in part), key=lambda p: p[0])]
        return Evaluation.of(per_video, seconds=sum(v.seconds for v in videos))

    # ------------------------------------------------------------------ checkpoints and artifacts

    def _checkpoint(
        self,
        path: Path,
        state: _State,
        net: HighlightNet,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
    ) -> None:
        _save_atomically(
            {
                "format": 1,
                "settings": _fingerprint(self.settings),
                "train_ids": list(self.split.train_ids),
                "validation_ids": list(self.split.validation_ids),
                "model": _cpu_state(net),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "state": {
                    **{f.name: getattr(state, f.name) for f in attrs.fields(_State)},
                    "initial": state.initial.to_dict(),
                    "history": [h.to_dict() for h in state.history],
                },
            },
            path,
        )

    def _restore(
        self,
        path: Path,
        net: HighlightNet,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
    ) -> _State:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        now = _fingerprint(self.settings)
        if saved["settings"] != now:
            changed = ", ".join(sorted(k for k in saved["settings"] if saved["settings"][k] != now.get(k)))
            raise InvalidOptions(f"cannot resume {path}: it was trained with other settings ({changed})")
        if (saved["train_ids"], saved["validation_ids"]) != (
            list(self.split.train_ids),
            list(self.split.validation_ids),
        ):
            raise InvalidOptions(f"cannot resume {path}: it was trained on other videos")
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        scaler.load_state_dict(saved["scaler"])
        _restore_rng(saved["rng"])
        fields = saved["state"]
        return _State(
            **{
                **fields,
                "initial": Evaluation.from_dict(fields["initial"]),
                "history": [EpochRecord(**h) for h in fields["history"]],
            }
        )

    def _finish(
        self,
        state: _State,
        net: HighlightNet,
        start_epoch: int,
        trained_seconds: int,
        training_time: float,
        trace: Path | None,
    ) -> TrainingResult:
        best = HighlightNet(hidden=self.settings.hidden, kernel=self.settings.kernel, version=state.version)
        best.load_state_dict(state.best_model)
        best = best.to(self.device)
        metrics = self._evaluate(best)
        result = TrainingResult(
            version=state.version,
            artifact=self.manager.weights_path(state.version),
            card=self.manager.card_path(state.version),
            metrics=metrics,
            initial_metrics=state.initial,
            epochs_run=state.epoch,
            best_epoch=state.best_epoch,
            samples_per_second=trained_seconds / training_time if training_time > 0 else 0.0,
            primary=self.world.primary,
            train_ids=self.split.train_ids,
            validation_ids=self.split.validation_ids,
            start_epoch=start_epoch,
            history=tuple(state.history),
            trace=trace,
        )
        if self.world.primary:
            self.manager.save(best.cpu(), state.version, self._card(result, state))
            log.info(
                "training.finished",
                version=state.version,
                kendall_tau=metrics.kendall_tau,
                initial_kendall_tau=state.initial.kendall_tau,
                best_epoch=state.best_epoch,
                epochs=state.epoch,
            )
        if self.world.size > 1:
            dist.barrier()  # no process reports success before rank 0 has written the model
        return result

    def _card(self, result: TrainingResult, state: _State) -> dict[str, Any]:
        return {
            "created_at": state.created,
            "training_data": {
                **self.training.summary(),
                "train_ids": list(result.train_ids),
                "validation_ids": list(result.validation_ids),
            },
            "settings": self.settings.to_dict(),
            "metrics": result.metrics.to_dict(),
            "initial_metrics": result.initial_metrics.to_dict(),
            "training": {
                "epochs_run": result.epochs_run,
                "best_epoch": result.best_epoch,
                "samples_per_second": result.samples_per_second,
                "processes": self.world.size,
                "device": str(self.device),
                "precision": str(self.dtype).removeprefix("torch.") if self.dtype else "fp32",
                "history": [h.to_dict() for h in result.history],
            },
        }

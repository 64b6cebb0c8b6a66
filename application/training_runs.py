"""Training runs as the API offers them: queue one for a worker, and follow it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from domain.errors import InvalidOptions, NotFound
from domain.jobs import TrainingRun, new_id
from domain.ports import UnitOfWorkFactory
from domain.training import TrainingSettings

# What a caller may set on a queued run; the rest comes from the service's settings.
_KINDS: dict[str, type | tuple[type, ...]] = {
    "epochs": int,
    "batch_size": int,
    "learning_rate": (int, float),
    "seed": int,
    "force": bool,
}
_KIND_NAMES = {int: "a whole number", (int, float): "a number", bool: "true or false"}
REQUESTABLE = frozenset(_KINDS)
# The bounds the OpenAPI document states (TrainingRunRequest).
_RANGES = {"epochs": (1, 10_000), "batch_size": (1, 4096), "learning_rate": (0, 10), "seed": (0, 2**32 - 1)}


@attrs.frozen
class QueueTrainingRun:
    uow: UnitOfWorkFactory

    async def __call__(self, requested_by: str, params: Mapping[str, Any]) -> TrainingRun:
        unknown = set(params) - REQUESTABLE
        if unknown:
            raise InvalidOptions(f"unknown training parameter(s): {', '.join(sorted(unknown))}")
        for name, value in params.items():
            kind = _KINDS[name]
            if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
                raise InvalidOptions(f"{name} must be {_KIND_NAMES[kind]}")
        for name, (low, high) in _RANGES.items():
            if name in params and not low <= params[name] <= high:
                raise InvalidOptions(f"{name} must be between {low:g} and {high:g}")
        if params.get("learning_rate", 1) <= 0:
            raise InvalidOptions("learning_rate must be above 0")
        settings = {k: v for k, v in params.items() if k != "force"}
        try:
            TrainingSettings.from_dict(settings)  # refuse bad values now, not in the worker
        except (TypeError, ValueError) as error:
            raise InvalidOptions(f"invalid training parameters: {error}") from None
        async with self.uow() as tx:
            run = TrainingRun(
                id=new_id(), params=dict(params), created_at=await tx.now(), requested_by=requested_by
            )
            await tx.training_runs.add(run)
            await tx.queue.enqueue_training(run.id)
            await tx.commit()
        return run


@attrs.frozen
class GetTrainingRun:
    uow: UnitOfWorkFactory

    async def __call__(self, run_id: str) -> TrainingRun:
        async with self.uow(read_only=True) as tx:
            run = await tx.training_runs.get(run_id)
        if run is None:
            raise NotFound(f"training run {run_id} does not exist")
        return run

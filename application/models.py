"""The model registry as the service uses it: which version scores, the list of versions, and promotion or
rollback by hand."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from domain.errors import NotFound
from domain.jobs import ModelVersion
from domain.ports import UnitOfWorkFactory


async def served_version(uow: UnitOfWorkFactory, pin: str | None = None) -> str | None:
    """The version jobs score with now: ``pin`` (MODEL_VERSION) when set, else the registry's active one,
    else None (the built-in prior). Read per job, so every process follows a promotion without a restart."""
    if pin:
        return pin
    async with uow(read_only=True) as tx:
        active = await tx.models.active()
    return None if active is None else active.version


@attrs.frozen
class ListModels:
    uow: UnitOfWorkFactory

    async def __call__(self) -> Sequence[ModelVersion]:
        async with self.uow(read_only=True) as tx:
            return await tx.models.list()


@attrs.frozen
class ActivateModel:
    """Manual promotion, or rollback to a retired version: the chosen one becomes the only active one."""

    uow: UnitOfWorkFactory

    async def __call__(self, version_id: str) -> ModelVersion:
        async with self.uow() as tx:
            if await tx.models.get(version_id) is None:
                raise NotFound(f"model version {version_id} does not exist")
            activated = await tx.models.activate(version_id)
            await tx.commit()
        return activated

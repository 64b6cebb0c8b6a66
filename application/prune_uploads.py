"""PruneUploads: an upload's file is deleted once it is older than the retention and no job still needs it.

An upload is read by its job's attempts, retries included; once every job that reads it has ended (or the
submission that stored it failed), nothing reads it again. The retention (UPLOAD_RETENTION_HOURS) is how
long an upload is kept at least, counted from when it was stored; 0 keeps uploads forever. Workers run this
with their sweep; two at once is harmless (a file already gone frees nothing).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import attrs

from domain.jobs import UPLOAD_PREFIX, utcnow
from domain.ports import UnitOfWorkFactory, UploadStore

log = logging.getLogger(__name__)

BATCH = 500  # sources per query


@attrs.frozen
class UploadRetention:
    hours: float = 168.0  # 0: uploads are kept forever

    @property
    def check_every_seconds(self) -> float:
        """How often a sweeper need look: ten times per retention period, and at least every 10 minutes
        (listing a folder of a week's uploads every few seconds would be work for nothing)."""
        return min(600.0, self.hours * 360.0)


@attrs.frozen
class PruneReport:
    removed: tuple[str, ...] = ()
    bytes_freed: int = 0


@attrs.frozen
class PruneUploads:
    uow: UnitOfWorkFactory
    uploads: UploadStore
    retention: UploadRetention

    async def __call__(self) -> PruneReport:
        if self.retention.hours <= 0:
            return PruneReport()
        # Files carry this machine's clock, so the cutoff is taken on it too, not on the database's.
        cutoff = utcnow() - timedelta(hours=self.retention.hours)
        old = await asyncio.to_thread(self.uploads.older_than, cutoff)
        removable: list[str] = []
        for start in range(0, len(old), BATCH):
            batch = old[start : start + BATCH]
            async with self.uow(read_only=True) as uow:
                needed = await uow.jobs.unfinished_sources(
                    [f"{UPLOAD_PREFIX}{upload_id}" for upload_id in batch]
                )
            removable += [upload_id for upload_id in batch if f"{UPLOAD_PREFIX}{upload_id}" not in needed]
        freed = 0
        for upload_id in removable:
            freed += await asyncio.to_thread(self.uploads.remove, upload_id)
        if removable:
            log.info("uploads.pruned", extra={"count": len(removable), "bytes": freed})
        return PruneReport(tuple(removable), freed)

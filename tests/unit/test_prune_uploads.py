"""PruneUploads over a real folder: an upload goes once past the retention, if no unfinished job reads it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from adapters.media.upload_folder import UploadFolder
from adapters.memory.unit_of_work import MemoryUnitOfWorkFactory
from application.prune_uploads import PruneUploads, UploadRetention
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.jobs import UPLOAD_PREFIX, utcnow

DAY = 24 * 3600


def _upload(folder: Path, name: str, age_seconds: float, size: int = 1000) -> str:
    path = folder / name
    path.write_bytes(b"\0" * size)
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return name


async def _job_reading(uow: MemoryUnitOfWorkFactory, upload_id: str, *, finished: bool) -> None:
    job = (await SubmitJob(uow)(SubmitJobRequest("alice", f"{UPLOAD_PREFIX}{upload_id}", {}))).job
    if finished:
        async with uow() as unit:
            stored = await unit.jobs.get(job.id, for_update=True)
            assert stored is not None
            stored.cancel(utcnow())
            await unit.jobs.update(stored)
            await unit.commit()


async def test_old_uploads_no_unfinished_job_reads_are_deleted_and_the_rest_kept(tmp_path: Path) -> None:
    uow = MemoryUnitOfWorkFactory()
    done = _upload(tmp_path, "a" * 32, 8 * DAY, size=1500)  # its job ended
    orphan = _upload(tmp_path, "b" * 32, 8 * DAY, size=500)  # its submission failed: no job at all
    waiting = _upload(tmp_path, "c" * 32, 8 * DAY)  # its job is still queued (a long backlog)
    recent = _upload(tmp_path, "d" * 32, 1 * DAY)  # its job ended, but it is inside the retention
    stray = _upload(tmp_path, "notes.txt", 8 * DAY)  # not an upload's name: never touched
    await _job_reading(uow, done, finished=True)
    await _job_reading(uow, waiting, finished=False)
    await _job_reading(uow, recent, finished=True)

    report = await PruneUploads(uow, UploadFolder(tmp_path), UploadRetention(hours=7 * 24))()

    assert sorted(report.removed) == [done, orphan] and report.bytes_freed == 2000
    assert sorted(os.listdir(tmp_path)) == [waiting, recent, stray]


async def test_a_retention_of_zero_keeps_every_upload(tmp_path: Path) -> None:
    old = _upload(tmp_path, "e" * 32, 365 * DAY)
    report = await PruneUploads(MemoryUnitOfWorkFactory(), UploadFolder(tmp_path), UploadRetention(hours=0))()
    assert report.removed == () and (tmp_path / old).exists()


def test_the_folder_lists_regular_files_only_and_never_follows_links(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    outside = tmp_path / "precious.mp4"
    outside.write_bytes(b"keep")
    link = uploads / ("f" * 32)
    link.symlink_to(outside)
    (uploads / ("0" * 32)).mkdir()
    folder = UploadFolder(uploads)
    assert folder.older_than(utcnow()) == []
    assert folder.remove("1" * 32) == 0  # already gone: nothing freed, no error
    assert UploadFolder(tmp_path / "missing").older_than(utcnow()) == []
    assert outside.read_bytes() == b"keep"


def test_a_sweeper_looks_ten_times_per_retention_and_at_least_every_ten_minutes() -> None:
    assert UploadRetention(hours=168).check_every_seconds == 600
    assert UploadRetention(hours=0.5).check_every_seconds == 180

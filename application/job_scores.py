"""GetJobScores: the per-second highlight scores of one of the caller's finished jobs, as the model gave them.

The worker writes them next to the attempt's clips (``scores.json`` in its own folder) before the attempt
saves its results, and the job's details name that file only when the attempt's fenced save commits: a late
attempt that lost the job never publishes its scores.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import attrs
import numpy as np

from application.ownership import owned_job
from domain.errors import NotFound
from domain.jobs import JobStatus
from domain.ports import MediaStore, UnitOfWorkFactory

SCORES_FILE = "scores.json"
SCORES_DETAIL = "scores_file"  # the job detail naming the file, relative to the job's clip folder
STEP_SECONDS = 1.0


@attrs.frozen
class JobScores:
    job_id: str
    step_seconds: float
    scores: tuple[float, ...]


def write_scores(folder: Path, scores: np.ndarray) -> Path:
    """``folder/scores.json``: one score per STEP_SECONDS from the start of the video."""
    values = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    path = folder / SCORES_FILE
    body = {"step_seconds": STEP_SECONDS, "scores": [round(float(v), 4) for v in values]}
    path.write_text(json.dumps(body, separators=(",", ":")))
    return path


@attrs.frozen
class GetJobScores:
    """Another user's job answers exactly as a missing one does; so does a job that is not done yet."""

    uow: UnitOfWorkFactory
    store: MediaStore

    async def __call__(self, owner: str, job_id: str) -> JobScores:
        async with self.uow(read_only=True) as uow:
            job = await owned_job(uow, owner, job_id)
        if job.status is not JobStatus.SUCCEEDED:
            raise NotFound(f"job {job.id} has no scores: it is {job.status.value}, not succeeded")
        name = job.details.get(SCORES_DETAIL)
        if not isinstance(name, str):
            raise NotFound(f"job {job.id} kept no per-second scores (it ran before they were kept)")
        folder = self.store.clip_dir(job.id)
        path = (folder / name).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise NotFound(f"job {job.id} kept no per-second scores")
        try:
            body = json.loads(await asyncio.to_thread(path.read_text))
        except (OSError, ValueError):
            raise NotFound(f"the scores of job {job.id} are gone from the media store") from None
        return JobScores(job.id, float(body["step_seconds"]), tuple(float(v) for v in body["scores"]))

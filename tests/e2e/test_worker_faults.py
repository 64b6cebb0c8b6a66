"""Workers under fire: killed, frozen, exhausted by their input, cut off from Postgres, outnumbered by work.
No job is lost, none is done twice, and a late worker's writes are fenced off."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.media.synthetic import Scene, write_video
from tests.e2e.crashing_media import HUGE, write_huge_frame_video
from tests.e2e.service import (
    Client,
    MediaServer,
    Proc,
    alive,
    descendants,
    fresh_database,
    query,
    service_env,
    start_api,
    start_worker,
    wait_for,
)

# 48 s, one scene of it loud noise: recognising noise keeps a worker busy for several seconds (the
# transcribe stage), a wide window to catch the job mid-way; quiet scenes have no speech to recognise.
LONG = tuple(
    Scene(6.0, colour, motion=0.5, loud=i == 3, face_x=0.5 if i % 3 == 0 else None)
    for i, colour in enumerate([(40, 60, 120), (200, 80, 40), (30, 140, 70), (150, 40, 150)] * 2)
)
OPTIONS = {"max_clips": 2, "min_seconds": 4, "max_seconds": 10}
MID_JOB = ("analyse", "transcribe", "score", "select", "render")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault-media")
    write_video(folder / "long.mp4", LONG)
    write_huge_frame_video(folder / "huge.mp4")
    (folder / "page.html").write_text("<!doctype html><title>no</title>" * 40)
    return folder


@pytest.fixture
def media(files: Path) -> Iterator[MediaServer]:
    with MediaServer(files) as server:
        yield server


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def _mid_job(client: Client, job_id: str) -> None:
    job = client.wait(job_id, until=lambda job: job["stage"] in MID_JOB or job["status"] != "queued")
    assert job["status"] == "running", f"the job was not caught mid-way: {job}"


def _holder(database_url: str, job_id: str) -> str | None:
    rows = asyncio.run(query(database_url, "SELECT lease_owner FROM jobs WHERE id = $1", job_id))
    return rows[0]["lease_owner"] if rows else None


def _worker_by_pid(workers: list[Proc], owner: str) -> Proc:
    pid = int(owner.rsplit(":", 1)[1])
    return next(w for w in workers if w.pid == pid)


def _clip_rows(database_url: str, job_id: str) -> list[Any]:
    return asyncio.run(query(database_url, "SELECT rank, media_path FROM clips WHERE job_id = $1", job_id))


def _stop_all(*procs: Proc) -> list[int]:
    return [proc.stop() for proc in procs]


def test_a_killed_worker_s_job_is_finished_by_another_with_one_set_of_clips(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    env = service_env(database, tmp_path)
    api = start_api(env, tmp_path)
    workers = [start_worker(env, tmp_path), start_worker(env, tmp_path)]
    try:
        alice = Client(api.url, "alice")
        job_id = alice.submitted(media.url("long.mp4"), OPTIONS)
        _mid_job(alice, job_id)
        victim = _worker_by_pid(workers, wait_for(lambda: _holder(database, job_id), 30, "a lease owner"))
        children = descendants(victim.pid)
        assert children, "the worker decodes in child processes"
        victim.process.kill()  # SIGKILL: no goodbye
        victim.process.wait()
        wait_for(lambda: not any(alive(pid) for pid in children), 15, "the dead worker's children to exit")
        job = alice.wait(job_id, timeout=240)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        rows = _clip_rows(database, job_id)
        assert sorted(r["rank"] for r in rows) == list(range(1, len(job["clips"]) + 1))
        assert len({Path(r["media_path"]).parent for r in rows}) == 1, "clips from two attempts"
        # The dead attempt's half-rendered files were cleared away.
        attempt_dirs = list((tmp_path / "media" / "clips" / job_id).iterdir())
        assert attempt_dirs == [Path(rows[0]["media_path"]).parent]
    finally:
        survivors = [w for w in workers if w.process.poll() is None]
        assert _stop_all(*survivors, api)[: len(survivors)] == [0] * len(survivors)


def test_a_frozen_worker_that_wakes_up_late_cannot_write(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    env = service_env(database, tmp_path)
    api = start_api(env, tmp_path)
    workers = [start_worker(env, tmp_path), start_worker(env, tmp_path)]
    frozen: Proc | None = None
    try:
        alice = Client(api.url, "alice")
        job_id = alice.submitted(media.url("long.mp4"), OPTIONS)
        _mid_job(alice, job_id)
        frozen = _worker_by_pid(workers, wait_for(lambda: _holder(database, job_id), 30, "a lease owner"))
        frozen.signal(signal.SIGSTOP)
        job = alice.wait(job_id, timeout=240)  # the other worker takes over once the lease runs out
        assert job["status"] == "succeeded" and job["attempts"] == 2, job
        clips_before = _clip_rows(database, job_id)
        frozen.signal(signal.SIGCONT)
        wait_for(lambda: "job.write_fenced" in frozen.output, 30, "the late worker's write to be fenced")
        line = next(line for line in frozen.output.splitlines() if "job.write_fenced" in line)
        assert job_id in line
        time.sleep(2)
        assert _clip_rows(database, job_id) == clips_before
        final = alice.job(job_id)
        assert final["status"] == "succeeded" and final["attempts"] == 2
        assert httpx.get(f"{frozen.url}/health").status_code == 200, "the late worker carries on"
    finally:
        if frozen is not None:
            frozen.signal(signal.SIGCONT)
        assert _stop_all(*workers, api)[:2] == [0, 0]


def test_many_workers_claim_each_of_many_jobs_exactly_once(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    env = service_env(database, tmp_path)
    api = start_api(env, tmp_path)
    workers = [start_worker(env, tmp_path) for _ in range(4)]
    try:
        alice = Client(api.url, "alice")
        ids = [alice.submitted(media.url("page.html")) for _ in range(500)]
        assert len(set(ids)) == 500

        def finished() -> bool:
            rows = asyncio.run(query(database, "SELECT count(*) AS n FROM jobs WHERE status = 'failed'"))
            return rows[0]["n"] == 500

        wait_for(finished, 300, "500 jobs to finish", every=1.0)
        rows = asyncio.run(query(database, "SELECT id, attempts, error_code FROM jobs"))
        assert {r["id"] for r in rows} == set(ids)
        assert Counter(r["attempts"] for r in rows) == Counter({1: 500}), "a job was claimed twice"
        assert {r["error_code"] for r in rows} == {"unsupported_media"}
        claims = Counter(
            line.split('"job_id": "', 1)[1][:36]
            for worker in workers
            for line in worker.output.splitlines()
            if '"job.claimed"' in line
        )
        assert set(claims) == set(ids) and set(claims.values()) == {1}
        per_worker = [sum('"job.claimed"' in line for line in w.output.splitlines()) for w in workers]
        assert all(n > 0 for n in per_worker), f"some worker never got work: {per_worker}"
    finally:
        assert _stop_all(*workers, api)[:4] == [0, 0, 0, 0]


def test_an_input_that_exhausts_its_media_child_fails_its_job_and_the_worker_lives_on(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    """Media work (rendering included) runs in sandboxed children: one that runs out of memory on a file
    fails that job with a reason, after its attempts, and the worker goes on to do real work."""
    env = service_env(
        database,
        tmp_path,
        JOB_MAX_ATTEMPTS="2",
        MEDIA_MEMORY_LIMIT_BYTES=str(256 * 1024**2),  # the least allowed; a 640×360 job fits
        MAX_VIDEO_PIXELS=str(HUGE[0] * HUGE[1]),
    )
    api = start_api(env, tmp_path)
    worker = start_worker(env, tmp_path)
    try:
        alice = Client(api.url, "alice")
        huge = alice.submitted(media.url("huge.mp4"), {"max_clips": 1, "min_seconds": 4, "max_seconds": 6})
        job = alice.wait(huge, timeout=300)
        assert (job["status"], job["attempts"]) == ("failed", 2), job
        assert job["error"]["code"] == "corrupt_media" and "memory" in job["error"]["message"], job
        assert worker.process.poll() is None and httpx.get(f"{worker.url}/health").status_code == 200
        # ...and goes on to do real work.
        fine = alice.wait(alice.submitted(media.url("long.mp4"), {"max_clips": 1}), timeout=300)
        assert fine["status"] == "succeeded", fine
    finally:
        assert _stop_all(worker, api)[0] == 0


def test_jobs_resume_after_postgres_restarts_mid_run(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    restart = _postgres_restart_command()
    env = service_env(database, tmp_path)
    api = start_api(env, tmp_path)
    workers = [start_worker(env, tmp_path), start_worker(env, tmp_path)]
    try:
        alice = Client(api.url, "alice")
        ids = [alice.submitted(media.url("long.mp4"), {**OPTIONS, "max_clips": 1}) for _ in range(3)]
        _mid_job(alice, ids[0])
        subprocess.run(restart, check=True, timeout=120, capture_output=True)
        jobs = [alice.wait(job_id, timeout=400) for job_id in _retrying(alice, ids)]
        assert [job["status"] for job in jobs] == ["succeeded"] * 3, jobs
        for worker in workers:
            assert worker.process.poll() is None, worker.output[-3000:]
            wait_for(
                lambda w=worker: httpx.get(f"{w.url}/health").json()["queue"] == "running", 60, "reconnect"
            )
        later = alice.wait(alice.submitted(media.url("long.mp4"), {"max_clips": 1}), timeout=300)
        assert later["status"] == "succeeded"
    finally:
        assert _stop_all(*workers, api)[:2] == [0, 0]


def test_sigterm_lets_the_running_job_finish_then_exits_zero(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    env = service_env(database, tmp_path, WORKER_SHUTDOWN_GRACE_SECONDS="240")
    api = start_api(env, tmp_path)
    worker = start_worker(env, tmp_path)
    try:
        alice = Client(api.url, "alice")
        first = alice.submitted(media.url("long.mp4"), {**OPTIONS, "max_clips": 1})
        second = alice.submitted(media.url("long.mp4"), {**OPTIONS, "max_clips": 2})
        _mid_job(alice, first)
        worker.signal(signal.SIGTERM)
        assert worker.process.wait(timeout=240) == 0, worker.output[-3000:]
        assert alice.job(first)["status"] == "succeeded"
        assert alice.job(second)["status"] == "queued", "a stopping worker claimed new work"
    finally:
        worker.kill()
        api.stop()


def test_sigterm_past_the_grace_period_hands_the_job_to_another_worker(
    database: str, media: MediaServer, tmp_path: Path
) -> None:
    env = service_env(database, tmp_path, WORKER_SHUTDOWN_GRACE_SECONDS="1")
    api = start_api(env, tmp_path)
    leaving = start_worker(env, tmp_path)
    try:
        alice = Client(api.url, "alice")
        job_id = alice.submitted(media.url("long.mp4"), OPTIONS)
        _mid_job(alice, job_id)
        children = descendants(leaving.pid)
        leaving.signal(signal.SIGTERM)
        assert leaving.process.wait(timeout=60) == 0, leaving.output[-3000:]
        wait_for(lambda: not any(alive(pid) for pid in children), 15, "the worker's children to exit")
        handed_back = alice.job(job_id)
        assert (handed_back["status"], handed_back["attempts"]) == ("queued", 0), handed_back
        staying = start_worker(env, tmp_path)
        try:
            job = alice.wait(job_id, timeout=300)
            assert job["status"] == "succeeded" and job["attempts"] == 1
        finally:
            assert staying.stop() == 0
    finally:
        leaving.kill()
        api.stop()


def _retrying(client: Client, ids: list[str]) -> list[str]:
    """While Postgres comes back, the API may answer 503 for a moment: wait until it reads again."""
    wait_for(lambda: client.http.get(f"/v1/jobs/{ids[0]}").status_code == 200, 60, "the API to read again")
    return ids


def _postgres_restart_command() -> list[str]:
    command = os.environ.get("TEST_POSTGRES_RESTART")
    if command:
        return command.split()
    clusters = Path("/etc/postgresql")
    if clusters.is_dir():
        version = sorted(p.name for p in clusters.iterdir())[-1]
        return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]
    pytest.fail("set TEST_POSTGRES_RESTART to a command that restarts the test database server", False)


def test_a_worker_deletes_an_ended_jobs_upload_once_the_retention_has_passed(
    database: str, tmp_path: Path
) -> None:
    # About two seconds of retention, so the worker's one-second sweep decides within the test.
    env = service_env(database, tmp_path, UPLOAD_RETENTION_HOURS=str(2 / 3600))
    api = start_api(env, tmp_path)
    worker: Proc | None = None
    try:
        alice = Client(api.url, "alice")
        write_video(tmp_path / "short.mp4", LONG[:1])
        job_id = alice.submitted_file(tmp_path / "short.mp4")
        uploads = tmp_path / "media" / "uploads"
        (stored,) = list(uploads.iterdir())
        # No worker yet: the job waits in the queue, and is cancelled there.
        assert alice.http.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        worker = start_worker(env, tmp_path)
        wait_for(lambda: not stored.exists(), 60, "the ended job's upload to be deleted")
        assert list(uploads.iterdir()) == []
    finally:
        workers = [worker] if worker else []
        assert _stop_all(*workers, api)[: len(workers)] == [0] * len(workers)

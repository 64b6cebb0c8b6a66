"""The service as a client uses it: a real `opusclip serve` and two `opusclip worker` processes against
Postgres and Redis; videos submitted by URL (from a media server on 127.0.0.1) and by upload, followed to
the end, their clips downloaded with Range requests, captioned and rated."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from adapters.media.synthetic import Scene, write_video
from application.process_job import STAGES
from tests.e2e.service import (
    Client,
    MediaServer,
    Proc,
    fresh_database,
    query,
    service_env,
    start_api,
    start_worker,
    wait_for,
)

SCENES = (
    Scene(8.0, (40, 60, 120), face_x=0.5),
    Scene(8.0, (200, 80, 40), motion=0.8, loud=True),
    Scene(8.0, (30, 140, 70), face_x=0.3),
    Scene(8.0, (150, 40, 150), motion=0.3),
)
OPTIONS = {"max_clips": 2, "min_seconds": 4, "max_seconds": 10}


@attrs.frozen
class Stack:
    api: Proc
    workers: tuple[Proc, ...]
    media: MediaServer
    database_url: str
    root: Path

    def client(self, subject: str) -> Client:
        return Client(self.api.url, subject, patient=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("service")
    files = root / "files"
    files.mkdir()
    write_video(files / "talk.mp4", SCENES)
    (files / "page.html").write_text("<!doctype html><html><body>not a video</body></html>" * 20)
    with fresh_database() as database_url, MediaServer(files) as media:
        env = service_env(database_url, root, CACHE_ENABLED="true")
        api = start_api(env, root)
        workers = (start_worker(env, root), start_worker(env, root))
        try:
            yield Stack(api, workers, media, database_url, root)
        finally:
            codes = [proc.stop() for proc in (*workers, api)]
            assert codes[:2] == [0, 0], [w.output[-2000:] for w in workers]


@pytest.fixture(scope="module")
def done_jobs(stack: Stack) -> dict[str, dict[str, Any]]:
    """One job by URL and one by upload, run to the end."""
    alice = stack.client("alice")
    by_url = alice.submit_url(stack.media.url("talk.mp4"), OPTIONS)
    by_upload = alice.submit_file(stack.root / "files" / "talk.mp4", OPTIONS)
    for response in (by_url, by_upload):
        assert response.status_code == 202, response.text
        assert response.headers["location"] == response.json()["links"]["self"]
    return {
        "url": alice.wait(by_url.json()["id"]),
        "upload": alice.wait(by_upload.json()["id"]),
    }


def test_jobs_by_url_and_by_upload_succeed_with_ranked_clips(done_jobs: dict[str, dict[str, Any]]) -> None:
    for kind, job in done_jobs.items():
        assert job["status"] == "succeeded", (kind, job)
        assert job["progress"] == 1.0 and job["error"] is None and job["attempts"] == 1
        assert job["model_version"] == "prior-v1"
        assert [clip["rank"] for clip in job["clips"]] == list(range(1, len(job["clips"]) + 1))
        assert job["clips"] and all(4 <= clip["duration"] <= 10.5 for clip in job["clips"])
    assert done_jobs["upload"]["source"] == {"kind": "upload", "filename": "talk.mp4"}
    assert done_jobs["url"]["source"]["kind"] == "url"


def test_a_clip_downloads_whole_and_by_range(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    alice = stack.client("alice")
    clip = done_jobs["url"]["clips"][0]
    whole = alice.http.get(clip["links"]["media"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.content[4:8] == b"ftyp"
    part = alice.http.get(clip["links"]["media"], headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
    assert part.content == whole.content[100:1100]
    tail = alice.http.get(clip["links"]["media"], headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == whole.content[-64:]
    beyond = alice.http.get(clip["links"]["media"], headers={"Range": f"bytes={len(whole.content) + 10}-"})
    assert beyond.status_code == 416


def test_captions_and_metadata_of_a_clip(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    alice = stack.client("alice")
    clip = done_jobs["upload"]["clips"][0]
    assert alice.http.get(clip["links"]["self"]).json() == clip
    vtt = alice.http.get(clip["links"]["captions_vtt"])
    assert vtt.status_code == 200 and vtt.text.startswith("WEBVTT")
    srt = alice.http.get(clip["links"]["captions_srt"])
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")


def test_rating_a_clip_and_rating_it_again(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    alice = stack.client("alice")
    clip = done_jobs["url"]["clips"][0]
    first = alice.http.post(clip["links"]["feedback"], json={"rating": 1})
    assert first.status_code == 200 and first.json()["rating"] == 1
    again = alice.http.post(clip["links"]["feedback"], json={"rating": -1})
    assert again.json()["rating"] == -1
    for bad in ({"rating": 0}, {"rating": 5}, {"rating": True}, {"stars": 1}, [1]):
        response = alice.http.post(clip["links"]["feedback"], json=bad)
        assert response.status_code == 422, (bad, response.text)
    rows = asyncio.run(
        query(stack.database_url, "SELECT rater, rating FROM feedback WHERE clip_id = $1", clip["id"])
    )
    assert [(r["rater"], r["rating"]) for r in rows] == [("alice", -1)]
    # The job and the clip show each user their own rating, and nobody else's.
    mine = alice.http.get(done_jobs["url"]["links"]["self"]).json()["clips"]
    assert [c["my_rating"] for c in mine if c["id"] == clip["id"]] == [-1]
    assert alice.http.get(clip["links"]["self"]).json()["my_rating"] == -1
    assert all(c["my_rating"] is None for c in mine if c["id"] != clip["id"])


def test_another_user_sees_none_of_it(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    bob = stack.client("bob")
    job = done_jobs["url"]
    clip = job["clips"][0]
    for url in (
        job["links"]["self"],
        clip["links"]["self"],
        clip["links"]["media"],
        clip["links"]["captions_vtt"],
    ):
        response = bob.http.get(url)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["error"]["code"] == "not_found" and response.json()["request_id"]
    assert bob.http.post(clip["links"]["feedback"], json={"rating": 1}).status_code == 404
    assert bob.http.delete(job["links"]["self"]).status_code == 404
    assert bob.http.get("/v1/jobs").json()["jobs"] == []


def test_the_same_video_from_another_user_is_not_decoded_again(
    stack: Stack, done_jobs: dict[str, dict[str, Any]]
) -> None:
    carol = stack.client("carol")
    response = carol.submit_url(stack.media.url("talk.mp4"), {**OPTIONS, "aspect": "9:16"})
    job = carol.wait(response.json()["id"])
    assert job["status"] == "succeeded", job
    assert set(job["cache_hits"]) == {"analyse", "transcribe"}


def test_the_jobs_list_pages_with_a_cursor(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    alice = stack.client("alice")
    extra = [alice.submitted(stack.media.url("page.html")) for _ in range(3)]
    seen: list[str] = []
    response = alice.http.get("/v1/jobs", params={"limit": 2})
    while True:
        body = response.json()
        assert len(body["jobs"]) <= 2
        seen.extend(job["id"] for job in body["jobs"])
        if body["next_cursor"] is None:
            break
        response = alice.http.get(body["links"]["next"])
    assert len(seen) == len(set(seen)) >= 5
    times = [alice.job(job_id)["created_at"] for job_id in seen]
    assert times == sorted(times, reverse=True)
    assert alice.http.get("/v1/jobs", params={"cursor": "forged"}).status_code == 422
    assert alice.http.get("/v1/jobs", params={"limit": 0}).status_code == 422
    for job_id in extra:
        alice.wait(job_id)


def test_a_file_that_is_not_media_fails_its_job_at_once(stack: Stack) -> None:
    alice = stack.client("alice")
    job = alice.wait(alice.submitted(stack.media.url("page.html")))
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["error"]["code"] == "unsupported_media", job


def test_a_missing_url_fails_without_retries(stack: Stack) -> None:
    alice = stack.client("alice")
    job = alice.wait(alice.submitted(stack.media.url("nothing-here.mp4")))
    assert (job["status"], job["attempts"], job["error"]["code"]) == ("failed", 1, "source_rejected")
    assert "404" in job["error"]["message"]


def test_idempotency_key_over_http(stack: Stack) -> None:
    alice = stack.client("alice")
    key = {"Idempotency-Key": "e2e-key-1"}
    first = alice.submit_url(stack.media.url("page.html"), OPTIONS, **key)
    again = alice.submit_url(stack.media.url("page.html"), OPTIONS, **key)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and again.headers["location"] == first.headers["location"]
    other = alice.submit_url(stack.media.url("page.html"), {"max_clips": 1}, **key)
    assert other.status_code == 409 and other.json()["error"]["code"] == "conflict"


def test_an_upload_repeated_with_its_key_is_the_same_job(stack: Stack) -> None:
    alice = stack.client("alice")
    path = stack.root / "files" / "talk.mp4"
    first = alice.submit_file(path, OPTIONS, **{"Idempotency-Key": "upload-key"})
    again = alice.submit_file(path, OPTIONS, **{"Idempotency-Key": "upload-key"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    uploads = list((stack.root / "media" / "uploads").iterdir())
    # The repeat's bytes were not kept: only the first upload of this key stays on disk.
    assert sum(1 for p in uploads if p.stat().st_size == path.stat().st_size) == len(
        [
            j
            for j in alice.http.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
            if j["source"]["kind"] == "upload"
        ]
    )


def _events(client: Client, job_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The job's server-sent events, as (event, data), until ``end``."""
    with client.http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=180) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                yield kind, json.loads(line.split(":", 1)[1])
                if kind == "end":
                    return


def test_events_stream_progress_until_the_job_ends(stack: Stack) -> None:
    alice = stack.client("alice")
    job_id = alice.submitted(stack.media.url("talk.mp4"), {**OPTIONS, "max_clips": 1})
    events = list(_events(alice, job_id))
    assert events[-1][0] == "end" and events[-1][1]["status"] == "succeeded"
    progress = [(e["status"], e["stage"], e["progress"]) for k, e in events if k == "progress"]
    assert len(progress) >= 3 and progress[-1] == ("succeeded", "done", 1.0)
    # The stream wakes on each committed change, so the stages show, in the order the job runs them.
    running = [(STAGES.index(stage), fraction) for status, stage, fraction in progress if stage in STAGES]
    assert len(running) >= 3 and running == sorted(running)


def test_a_running_job_is_cancelled_at_its_next_stage(stack: Stack) -> None:
    alice = stack.client("alice")
    job_id = alice.submitted(stack.media.url("talk.mp4"), {**OPTIONS, "aspect": "1:1", "max_clips": 3})
    # Cancelled as soon as it starts (the events are pushed), so that stages are still ahead of it.
    next(e for k, e in _events(alice, job_id) if e["status"] != "queued")
    response = alice.http.delete(f"/v1/jobs/{job_id}")
    assert response.status_code in (200, 202), response.text
    job = alice.wait(job_id)
    assert job["status"] == "cancelled" and "clips" not in job
    assert alice.http.delete(f"/v1/jobs/{job_id}").status_code == 409


def test_bad_requests_are_4xx_with_a_code_and_request_id(stack: Stack) -> None:
    alice = stack.client("alice")
    cases = [
        ({"url": "file:///etc/passwd"}, 422),
        ({"url": "ftp://example.com/a.mp4"}, 422),
        ({"url": "http://user:pw@example.com/a.mp4"}, 422),
        ({"url": 5}, 422),
        ({"url": "https://example.com/a.mp4", "options": {"aspect": "4:3"}}, 422),
        ({"url": "https://example.com/a.mp4", "options": {"max_clips": 0}}, 422),
        ({"url": "https://example.com/a.mp4", "extra": 1}, 422),
        ([], 422),
    ]
    for body, status in cases:
        response = alice.http.post("/v1/jobs", json=body)
        assert response.status_code == status, (body, response.text)
        assert (
            response.json()["error"]["code"]
            and response.json()["request_id"] == response.headers["x-request-id"]
        )
    broken = alice.http.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422


def test_an_upload_that_is_not_media_is_refused(stack: Stack) -> None:
    alice = stack.client("alice")
    response = alice.submit_file(stack.root / "files" / "page.html")
    assert response.status_code == 415 and response.json()["error"]["code"] == "unsupported_media"


def test_the_original_design_routes(stack: Stack) -> None:
    alice = stack.client("alice")
    response = alice.http.post(
        "/video/process",
        json={"video_url": stack.media.url("talk.mp4"), "processing_type": "captions", "max_length": 9},
    )
    assert response.status_code == 202, response.text
    assert response.json()["options"]["max_seconds"] == 9
    for body, field in (
        ({"video_url": "ftp://x/y.mp4"}, "video_url"),
        ({"video_url": stack.media.url("a.mp4"), "processing_type": "remix"}, "processing_type"),
        ({"video_url": stack.media.url("a.mp4"), "max_length": 501}, "max_length"),
        ({"video_url": stack.media.url("a.mp4"), "max_length": 0}, "max_length"),
    ):
        bad = alice.http.post("/video/process", json=body)
        assert bad.status_code == 422 and bad.json()["error"]["message"].startswith(field), bad.text
    train = alice.http.post("/video/train", json={"epochs": 2})
    assert train.status_code == 202, train.text
    assert train.headers["location"] == train.json()["links"]["self"]
    # A worker takes the run off the training queue. Two ratings at most exist here, fewer than
    # TRAIN_MIN_NEW_RATINGS, so it ends skipped and says why.
    run = wait_for(
        lambda: (
            (r := alice.http.get(train.headers["location"]).json())["status"] not in ("queued", "running")
            and r
        ),
        60,
        "the training run to end",
    )
    assert run["status"] == "skipped" and "too little new feedback" in run["report"]["skipped"], run
    assert alice.http.post("/video/train", json={"epochs": 0}).status_code == 422


def test_metrics_of_the_api_and_of_each_worker(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    api = httpx.get(f"{stack.api.url}/metrics").text
    assert 'opusclip_jobs{status="succeeded"}' in api and "opusclip_queue_depth" in api
    assert "opusclip_queue_oldest_age_seconds" in api
    ran = 0.0
    for worker in stack.workers:
        text = httpx.get(f"{worker.url}/metrics").text
        assert 'opusclip_model_info{version="prior-v1"} 1.0' in text
        assert "opusclip_jobs{" in text
        ran += sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('opusclip_job_attempts_total{outcome="succeeded"}')
        )
        assert httpx.get(f"{worker.url}/health/detailed").json()["dependencies"]["postgres"]["healthy"]
    assert ran >= 2
    assert 'opusclip_job_stage_seconds_count{stage="render"}' in "".join(
        httpx.get(f"{w.url}/metrics").text for w in stack.workers
    )
    failures = "".join(httpx.get(f"{w.url}/metrics").text for w in stack.workers)
    assert 'opusclip_job_failures_total{reason="unsupported_media"}' in failures


def test_downloads_are_removed_after_their_job(stack: Stack, done_jobs: dict[str, dict[str, Any]]) -> None:
    downloads = stack.root / "media" / "downloads"
    assert not downloads.exists() or not any(downloads.iterdir())


def test_a_promoted_version_scores_the_next_job_of_a_running_worker(
    stack: Stack, done_jobs: dict[str, dict[str, Any]]
) -> None:
    """Runs last: it changes the active version for everything after it."""
    import torch

    from adapters.torch.highlight_net import HighlightNet
    from adapters.torch.model_manager import ModelManager

    model = HighlightNet(version="e2e-v2")
    with torch.no_grad():
        for parameter in model.residual.parameters():
            parameter.add_(0.01)
    artifact = ModelManager(stack.root / "models").save(model, "e2e-v2", {"metrics": {}})
    version_id = "00000000-0000-4000-8000-00000000e2e2"
    asyncio.run(
        query(
            stack.database_url,
            "INSERT INTO model_versions (id, version, artifact_path, created_at)"
            " VALUES ($1, 'e2e-v2', $2, now())",
            version_id,
            str(artifact),
        )
    )
    admin = stack.client("admin")
    listed = admin.http.get("/v1/models").json()["models"]
    assert [(m["version"], m["status"]) for m in listed] == [("e2e-v2", "candidate")]
    activated = admin.http.post(f"/v1/models/{version_id}/activate")
    assert activated.status_code == 200 and activated.json()["status"] == "active", activated.text
    assert admin.http.post(f"/v1/models/{version_id[:-1]}0/activate").status_code == 404

    # The same workers, never restarted: their next job scores with the new version.
    job = admin.wait(admin.submitted(stack.media.url("talk.mp4"), OPTIONS))
    assert job["status"] == "succeeded" and job["model_version"] == "e2e-v2", job
    assert {clip["model_version"] for clip in job["clips"]} == {"e2e-v2"}

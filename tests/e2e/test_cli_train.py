"""``opusclip train`` and ``opusclip eval`` as a scheduled job runs them: real processes on Postgres, Redis
and torch, ratings in the database and features in the cache (as workers leave them), files in
MODEL_CACHE_DIR."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from adapters.postgres.engine import create_engine
from adapters.postgres.unit_of_work import PostgresUnitOfWorkFactory
from adapters.redis.cache import RedisCache
from domain.features import FEATURE_NAMES, encode_features, features_key
from domain.jobs import Feedback, Job, JobStatus, StoredClip, Video, new_id
from domain.training import highlight_spans
from tests.e2e.service import REDIS_URL, fresh_database, opusclip, query, service_env
from tests.training_data import training_set

VIDEOS = 12


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(opusclip(*args), env=env, capture_output=True, text=True, timeout=600, check=False)


async def _seed(database_url: str, namespace: str) -> None:
    """Videos that workers analysed (their features cached), with their best stretches rated up and a
    loud distraction rated down, as users would."""
    engine = create_engine(database_url, pool_size=2, max_overflow=0)
    client = redis.from_url(REDIS_URL)
    cache = RedisCache(client, default_ttl=3600)
    uow = PostgresUnitOfWorkFactory(engine)
    try:
        for labelled in training_set(VIDEOS, seconds=90, seed=3).videos:
            sha = uuid.uuid5(uuid.NAMESPACE_URL, namespace + labelled.video_id).hex * 2
            # Ids from the generator's names: the held-out split (seeded, by id) is the same every run.
            video_id = str(uuid.uuid5(uuid.NAMESPACE_URL, labelled.video_id))
            video = Video(video_id, sha, "upload:x", float(labelled.seconds), 640, 360, 25.0, True, 1)
            job = Job(new_id(), "ana", "upload:x", {}, status=JobStatus.SUCCEEDED, video_id=video.id)
            liked = list(highlight_spans(labelled.targets))
            loud = labelled.features[:, FEATURE_NAMES.index("loudness")] > -25.0
            disliked = list(highlight_spans(loud.astype("float32")))
            ratings = [(span, 1) for span in liked] + [(span, -1) for span in disliked]
            clips = [
                (
                    StoredClip(
                        new_id(), job.id, video.id, rank, span.start, span.end, 1.0, "t", "", "/c.mp4"
                    ),
                    vote,
                )
                for rank, (span, vote) in enumerate(ratings, start=1)
            ]
            async with uow() as tx:
                await tx.videos.add(video)
                await tx.jobs.add(job)
                await tx.clips.add_many([clip for clip, _ in clips])
                for clip, vote in clips:
                    for rater in ("ana", "bo"):
                        await tx.feedback.add(Feedback(new_id(), clip.id, rater, vote))
                await tx.commit()
            await cache.set(features_key(sha), encode_features(labelled.features))
    finally:
        await client.aclose()
        await engine.dispose()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    root = tmp_path_factory.mktemp("train")
    with fresh_database() as database_url:
        env = service_env(
            database_url, root, CACHE_ENABLED="true", TRAIN_EPOCHS="30", TRAIN_MIN_NEW_RATINGS="10"
        )
        env["DATABASE_URL"] = database_url
        yield env, root


def test_too_little_feedback_exits_0_and_says_so(seeded) -> None:
    env, _ = seeded
    done = _run(env, "train", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "too little new feedback: 0 rating(s)" in done.stdout


def test_a_scheduled_run_trains_registers_and_promotes_a_better_version(seeded) -> None:
    env, root = seeded
    asyncio.run(_seed(env["DATABASE_URL"], str(root)))

    # Batches of 2 videos: enough optimizer steps on this small set within 30 epochs.
    done = _run(env, "train", "--no-progress", "--seed", "1", "--batch-size", "2")

    assert done.returncode == 0, done.stderr[-3000:]
    assert "promoted to active" in done.stdout, done.stdout
    rows = asyncio.run(query(env["DATABASE_URL"], "SELECT * FROM training_runs WHERE status = 'succeeded'"))
    assert len(rows) == 1 and rows[0]["promoted"]
    report = json.loads(rows[0]["report"])
    tau = {name: report[name]["metrics"]["kendall_tau"] for name in ("candidate", "active", "random")}
    print("held-out Kendall tau:", tau)
    assert tau["candidate"] > tau["active"] + 0.02 and tau["candidate"] > tau["random"] + 0.02
    version = rows[0]["candidate_version"]
    assert (root / "models" / f"{version}.safetensors").is_file()
    assert (root / "models" / f"{version}.json").is_file()
    models = asyncio.run(query(env["DATABASE_URL"], "SELECT version, status FROM model_versions"))
    assert [(m["version"], m["status"]) for m in models] == [(version, "active")]
    # Epoch logs go to stderr as JSON lines with loss, metric, throughput and learning rate.
    epochs = [json.loads(line) for line in done.stderr.splitlines() if '"training.epoch"' in line]
    assert epochs and {"loss", "kendall_tau", "samples_per_second", "learning_rate"} <= set(epochs[0])

    # Right after, nothing new was rated: the next scheduled run trains nothing.
    again = _run(env, "train", "--no-progress")
    assert again.returncode == 0 and "too little new feedback" in again.stdout

    out = root / "report.json"
    evaluated = _run(env, "eval", "--run", str(rows[0]["id"]), "--out", str(out))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "candidate" in evaluated.stdout and "random" in evaluated.stdout
    written = json.loads(out.read_text())
    assert written["candidate"]["version"] == version
    refused = _run(env, "eval", "--run", str(rows[0]["id"]), "--out", str(out))
    assert refused.returncode == 2 and "exists" in refused.stderr


def test_torchrun_with_two_processes_records_one_run(seeded) -> None:
    """Every rank runs `opusclip train`; rank 0 alone writes the run, the registry row and the files."""
    env, _ = seeded
    before = asyncio.run(query(env["DATABASE_URL"], "SELECT id FROM training_runs"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "entrypoints.cli", "train", "--force", "--no-progress", "--epochs", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = asyncio.run(query(env["DATABASE_URL"], "SELECT * FROM training_runs"))
    new = [r for r in runs if r["id"] not in {b["id"] for b in before}]
    assert len(new) == 1 and new[0]["status"] == "succeeded", new
    assert json.loads(new[0]["params"])["launch_id"]
    versions = asyncio.run(query(env["DATABASE_URL"], "SELECT version FROM model_versions"))
    assert new[0]["candidate_version"] in {v["version"] for v in versions}
    assert done.stdout.count("training run") == 1  # one outcome line, from rank 0


def test_bad_input_is_one_line_and_exit_2(seeded, tmp_path: Path) -> None:
    env, _ = seeded
    missing = _run(env, "train", "--annotations", str(tmp_path / "nope.tsv"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    bad = tmp_path / "bad.tsv"
    bad.write_text("only-two\tfields\n")
    malformed = _run(env, "train", "--annotations", str(bad))
    assert malformed.returncode == 2 and "line 1" in malformed.stderr
    assert _run(env, "train", "--epochs", "0").returncode == 2
    assert _run(env, "eval", "--run", "no-such-run").returncode == 2

"""Prometheus metrics of the job pipeline, shared by the API (queue state) and the workers (what they ran)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from application.job_statistics import JobStatistics, QueueSnapshot
from domain.jobs import JobStatus

log = structlog.get_logger("opusclip.metrics")

_STAGE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class JobMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Every process reads the same table: under multiprocess mode, the latest reading is the answer.
        self.jobs = Gauge(
            "opusclip_jobs",
            "Jobs by state",
            ["status"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.queue_depth = Gauge(
            "opusclip_queue_depth",
            "Queue entries waiting for a worker",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.oldest_queued = Gauge(
            "opusclip_queue_oldest_age_seconds",
            "How long the oldest queued job has waited",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.stage_seconds = Histogram(
            "opusclip_job_stage_seconds",
            "Seconds spent in each stage of a job (stages served from the cache are not observed)",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=registry,
        )
        self.outcomes = Counter(
            "opusclip_job_attempts_total",
            "Job attempts by outcome (succeeded, failed, retried, cancelled, lease_lost, released)",
            ["outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "opusclip_job_retries_total",
            "Attempts that were retried, by the error's code",
            ["reason"],
            registry=registry,
        )
        self.failures = Counter(
            "opusclip_job_failures_total",
            "Jobs that failed for good, by the error's code",
            ["reason"],
            registry=registry,
        )
        self.model = Gauge(
            "opusclip_model_info",
            "The highlight model version this process scores with (value 1)",
            ["version"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        for status in JobStatus:
            self.jobs.labels(status.value)

    def observe_snapshot(self, snapshot: QueueSnapshot) -> None:
        for status, count in snapshot.counts.by_status.items():
            self.jobs.labels(status.value).set(count)
        self.queue_depth.set(snapshot.queue_depth)
        self.oldest_queued.set(snapshot.counts.oldest_queued_seconds)
        self.set_model(snapshot.model_version)

    def observe_stages(self, timings: Iterable[tuple[str, float]]) -> None:
        for stage, seconds in timings:
            self.stage_seconds.labels(stage).observe(seconds)

    def set_model(self, version: str) -> None:
        self.model.clear()
        self.model.labels(version).set(1)


async def refresh_forever(
    metrics: JobMetrics, statistics: Callable[[], JobStatistics], interval: float
) -> None:
    """Reads the queue's state every ``interval`` seconds; a failed read keeps the last values."""
    while True:
        try:
            metrics.observe_snapshot(await statistics()())
        except Exception as error:  # the database is down: /health/detailed says so, the gauges wait
            log.debug("metrics.refresh_failed", error=f"{type(error).__name__}: {error}")
        await asyncio.sleep(interval)

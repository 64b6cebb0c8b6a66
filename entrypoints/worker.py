# Lagom keys registrations by port, and ports are Protocols: mypy's type-abstract check does not apply.
# mypy: disable-error-code="type-abstract"
"""``opusclip worker``: claims queued jobs and runs ``ProcessJob`` on them, any number per machine.

procrastinate fetches work (LISTEN/NOTIFY plus polling), heartbeats, and retries what the application
asks to retry. Around it this process adds what a long-lived worker needs:

* a supervisor: when the queue worker stops on its own (the database restarted and its listener or
  heartbeat failed), it starts again with backoff instead of the process exiting;
* a sweeper, every WORKER_SWEEP_SECONDS: work of stalled workers (no heartbeat for WORKER_STALLED_SECONDS)
  goes back to the queue, and ``RecoverJobs`` requeues jobs whose lease ran out with no live queue entry.
  A job whose worker died is therefore running again within max(WORKER_STALLED_SECONDS, JOB_LEASE_SECONDS)
  + WORKER_SWEEP_SECONDS + WORKER_HEARTBEAT_SECONDS. The same pass runs ``PruneUploads`` ten times per
  UPLOAD_RETENTION_HOURS (at least every 10 minutes): old uploads that no unfinished job reads are deleted;
* graceful stop on SIGTERM/SIGINT: nothing new is claimed, running jobs get WORKER_SHUTDOWN_GRACE_SECONDS
  to finish, then are handed back to the queue (their decoder children killed), and the process exits 0;
* ``/health``, ``/health/detailed`` and ``/metrics`` on ``--metrics-port``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import structlog
import uvicorn
from lagom import Container
from procrastinate import App, JobContext
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.media.isolation import Isolation
from adapters.queue.procrastinate_queue import JOBS_QUEUE, PROCESS_TASK, TRAIN_TASK, TRAINING_QUEUE
from adapters.queue.procrastinate_worker import OutcomeRetry, create_queue_app, retry_stalled
from application.check_health import HealthMonitor
from application.config import AppConfig
from application.job_statistics import JobStatistics
from application.process_job import ProcessJob
from application.prune_uploads import PruneUploads, UploadRetention
from application.recover_jobs import RecoverJobs
from application.train_model import TrainModel
from domain.errors import (
    IllegalTransition,
    JobCancelled,
    JobFailed,
    LeaseHeld,
    LeaseLost,
    NotFound,
    RetryScheduled,
)
from domain.ports import VideoModel
from entrypoints.bootstrap import build_worker_container
from entrypoints.console import fail
from entrypoints.http.app import service_version
from entrypoints.http.health import ServiceInfo, health_detailed
from entrypoints.http.logging import configure_logging
from entrypoints.job_metrics import JobMetrics, refresh_forever
from entrypoints.lifecycle import Lifecycle, settle_heap

log = structlog.get_logger("opusclip.worker")

RESTART_BACKOFF_MAX = 30.0


def run_worker_command(config: AppConfig, args: argparse.Namespace) -> int:
    concurrency = config.worker_concurrency if args.concurrency is None else args.concurrency
    if not 1 <= concurrency <= 64:
        return fail(f"--concurrency {concurrency}: run 1 to 64 jobs at once")
    if not 0 <= args.metrics_port <= 65535:
        return fail(f"--metrics-port {args.metrics_port} is not a TCP port")
    configure_logging(config.log_level, config.log_format)
    worker = WorkerProcess(config, concurrency, args.metrics_host, args.metrics_port)
    return asyncio.run(worker.run())


class WorkerProcess:
    def __init__(self, config: AppConfig, concurrency: int, metrics_host: str, metrics_port: int) -> None:
        self.config = config
        self.concurrency = concurrency
        self.metrics_host = metrics_host
        self.metrics_port = metrics_port
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.stopping = asyncio.Event()
        # One process, one registry: the default one also carries the process collectors and the adapters'
        # own counters (cache errors).
        self.registry = REGISTRY
        self.metrics = JobMetrics(self.registry)
        self.queue_running = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop, signum)
        container = build_worker_container(self.config)
        lifecycle = container[Lifecycle]
        await lifecycle.start()
        side: list[asyncio.Task[Any]] = []
        try:
            self.metrics.set_model(container[VideoModel].version)
            monitor = container[HealthMonitor]
            await monitor.start()
            server = _QuietServer(
                uvicorn.Config(
                    self._health_app(monitor),
                    host=self.metrics_host,
                    port=self.metrics_port,
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                )
            )
            side.append(asyncio.create_task(server.serve(), name="metrics server"))
            side.append(
                asyncio.create_task(
                    refresh_forever(
                        self.metrics,
                        lambda: container[JobStatistics],
                        self.config.health_check_interval,
                    ),
                    name="job metrics",
                )
            )
            app = create_queue_app(
                self.config.database_url,
                pool_size=max(2, self.concurrency + 2),
                connect_timeout=self.config.database_connect_timeout,
            )
            self._register(app, container)
            side.append(asyncio.create_task(self._sweep_forever(app, container), name="sweeper"))
            settle_heap()
            log.info("worker.started", worker=self.identity, concurrency=self.concurrency)
            await self._supervise(app)
            server.should_exit = True
            await monitor.stop()
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)
            # Children of jobs that were handed back are still decoding: stop them before closing.
            container[Isolation].kill_all()
            await lifecycle.close()
        log.info("worker.stopped", worker=self.identity)
        return 0

    def _stop(self, signum: int) -> None:
        if not self.stopping.is_set():
            log.info(
                "worker.stopping",
                signal=signal.Signals(signum).name,
                grace=self.config.worker_shutdown_grace_seconds,
            )
        self.stopping.set()

    def _register(self, app: App, container: Container) -> None:
        @app.task(name=PROCESS_TASK, queue=JOBS_QUEUE, pass_context=True, retry=OutcomeRetry())
        async def process_job(context: JobContext, job_id: str) -> None:
            await self._process(container, job_id)

        # No retry: a failed run is recorded as failed on its row, with its reason; `opusclip train --resume`
        # (or a new run) goes on from its checkpoint.
        @app.task(name=TRAIN_TASK, queue=TRAINING_QUEUE, pass_context=True)
        async def train_model(context: JobContext, run_id: str) -> None:
            await self._train(container, run_id)

    async def _train(self, container: Container, run_id: str) -> None:
        try:
            outcome = await container[TrainModel](run_id)
        except (IllegalTransition, NotFound) as error:
            log.info("training.nothing_to_do", run_id=run_id, reason=error.message)
            return
        except Exception as error:
            log.error("training.failed", run_id=run_id, error=f"{type(error).__name__}: {error}")
            return
        log.info("training.done", run_id=run_id, outcome=outcome.message)

    async def _process(self, container: Container, job_id: str) -> None:
        outcome = self.metrics.outcomes
        try:
            result = await container[ProcessJob](job_id, worker=self.identity)
        except RetryScheduled as retry:
            outcome.labels("retried").inc()
            self.metrics.retries.labels(retry.cause).inc()
            raise
        except JobFailed as failed:
            outcome.labels("failed").inc()
            self.metrics.failures.labels(failed.code).inc()
        except JobCancelled:
            outcome.labels("cancelled").inc()
        except LeaseLost:
            outcome.labels("lease_lost").inc()
        except LeaseHeld:
            raise
        except (IllegalTransition, NotFound) as error:
            log.info("job.nothing_to_do", job_id=job_id, reason=error.message)
        except asyncio.CancelledError:
            outcome.labels("released").inc()
            raise
        else:
            outcome.labels("succeeded").inc()
            self.metrics.observe_stages(result.timings.items())

    async def _supervise(self, app: App) -> None:
        """Run the queue worker until asked to stop; start it again whenever it stops on its own."""
        backoff = 1.0
        while not self.stopping.is_set():
            try:
                async with app.open_async():
                    run = asyncio.create_task(
                        app.run_worker_async(
                            queues=[JOBS_QUEUE, TRAINING_QUEUE],
                            name=self.identity,
                            concurrency=self.concurrency,
                            install_signal_handlers=False,
                            shutdown_graceful_timeout=self.config.worker_shutdown_grace_seconds,
                            update_heartbeat_interval=self.config.worker_heartbeat_seconds,
                            stalled_worker_timeout=self.config.worker_stalled_seconds,
                            delete_jobs="successful",
                        ),
                        name="queue worker",
                    )
                    self.queue_running = True
                    stop = asyncio.create_task(self.stopping.wait())
                    await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
                    stop.cancel()
                    if not run.done():
                        # Graceful: no new claims; running jobs get the grace period, then are handed back.
                        run.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await run  # re-raises what stopped it
                    backoff = 1.0
            except Exception as error:
                log.warning("worker.queue_failed", error=f"{type(error).__name__}: {error}", retry_in=backoff)
            finally:
                self.queue_running = False
            if self.stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            backoff = min(RESTART_BACKOFF_MAX, backoff * 2)

    async def _sweep_forever(self, app: App, container: Container) -> None:
        prune_every = container[UploadRetention].check_every_seconds
        pruned_at = -math.inf
        while True:
            await asyncio.sleep(self.config.worker_sweep_seconds)
            try:
                if self.queue_running:
                    await retry_stalled(app, self.config.worker_stalled_seconds)
                await container[RecoverJobs]()
                if time.monotonic() - pruned_at >= prune_every:
                    pruned_at = time.monotonic()
                    await container[PruneUploads]()
            except Exception as error:
                log.warning("worker.sweep_failed", error=f"{type(error).__name__}: {error}")

    def _health_app(self, monitor: HealthMonitor) -> Starlette:
        async def health(request: Request) -> Response:
            info: ServiceInfo = request.app.state.service_info
            body = {
                "status": "ok",
                "worker": self.identity,
                "queue": "running" if self.queue_running else "reconnecting",
                "uptime_seconds": info.uptime_seconds,
            }
            return JSONResponse(body)

        async def metrics(request: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        app = Starlette(
            routes=[
                Route("/health", health, methods=["GET"]),
                Route("/health/detailed", health_detailed, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ]
        )
        app.state.service_info = ServiceInfo(version=service_version())
        app.state.health_monitor = monitor
        return app


class _QuietServer(uvicorn.Server):
    """uvicorn serving the worker's health and metrics; the worker, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

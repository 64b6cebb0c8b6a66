"""``opusclip serve`` and ``opusclip migrate``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import uvicorn

from application.config import AppConfig
from entrypoints.console import EXIT_INTERNAL, fail
from entrypoints.token_command import build_token_authority


def serve(config: AppConfig, *, host: str, port: int, workers: int) -> int:
    if not 1 <= port <= 65535:
        return fail(f"--port {port} is not a TCP port (1-65535)")
    if workers < 1:
        return fail("--workers must be at least 1")
    try:
        # Checked here, once, so a bad key stops `serve` with one line instead of failing every worker.
        build_token_authority(config)
    except ValueError as error:
        return fail(f"configuration error: {error}")
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Set before the workers start (and import prometheus_client), so /metrics sums every worker.
        metrics_dir = tempfile.mkdtemp(prefix="opusclip-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        _run(host, port, workers, config.log_level)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run(host: str, port: int, workers: int, log_level: str) -> None:
    # The factory re-reads the environment in each worker process; config was validated above.
    uvicorn.run(
        "entrypoints.http.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # our middleware logs every request with its request id and route template
        log_level=log_level,
        timeout_graceful_shutdown=30,
        proxy_headers=True,
    )


def migrate(config: AppConfig) -> int:
    from adapters.postgres.migrate import upgrade

    try:
        upgrade(config.database_url)
    except Exception as error:  # any failure is one line for the operator, who fixes it and retries
        return fail(f"migration failed: {type(error).__name__}: {error}", EXIT_INTERNAL)
    print("opusclip: database is at the latest migration", file=sys.stderr)
    return 0

"""``opusclip serve`` and ``opusclip migrate``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import uvicorn

from application.config import AppConfig


def serve(config: AppConfig, *, host: str, port: int, workers: int) -> int:
    if not 1 <= port <= 65535:
        print(f"opusclip: --port {port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    if workers < 1:
        print("opusclip: --workers must be at least 1", file=sys.stderr)
        return 2
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
        print(f"opusclip: migration failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("opusclip: database is at the latest migration", file=sys.stderr)
    return 0

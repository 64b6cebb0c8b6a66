"""Every use case a process calls resolves from that process's real container, so a wiring mistake fails
here, not in production: the API's routes, the worker's tasks, and the CLI's commands."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterable
from pathlib import Path

import attrs
import pytest
from lagom import Container, injectable
from starlette.routing import Route

import application
from application.check_health import HealthMonitor
from application.config import AppConfig
from application.job_statistics import JobStatistics
from application.process_job import ProcessJob
from application.prune_uploads import PruneUploads
from application.recover_jobs import RecoverJobs
from application.submit_job import SubmitJob
from application.train_model import EvaluateModels, TrainModel
from application.training_data import BuildTrainingSet
from entrypoints.bootstrap import (
    build_container,
    build_local_container,
    build_training_container,
    build_worker_container,
)
from entrypoints.http.api import api_routes
from entrypoints.lifecycle import Lifecycle

JWT_SECRET = "wiring-test-" + "x" * 32


def _use_cases() -> set[type]:
    found = set()
    for module_info in pkgutil.iter_modules(application.__path__):
        module = importlib.import_module(f"application.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # A use case is an attrs class of this module that defines __call__.
            if cls.__module__ == module.__name__ and attrs.has(cls) and "__call__" in cls.__dict__:
                found.add(cls)
    return found


def _injected(container: Container) -> set[type]:
    """What the API's route functions ask Lagom for."""
    wanted: set[type] = set()
    for route in api_routes(container):
        assert isinstance(route, Route)
        function = inspect.unwrap(route.endpoint)
        hints = typing.get_type_hints(function)
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.default is injectable:
                wanted.add(hints[name])
    return wanted


# The worker runs these; the CLI runs SubmitJob and ProcessJob; `opusclip train` and `eval` the training ones.
WORKER_USE_CASES = {ProcessJob, RecoverJobs, PruneUploads, JobStatistics, TrainModel}
CLI_USE_CASES = {SubmitJob, ProcessJob}
TRAINING_USE_CASES = {TrainModel, EvaluateModels, BuildTrainingSet}


def test_every_use_case_has_a_caller() -> None:
    called = _injected(Container()) | WORKER_USE_CASES | CLI_USE_CASES | TRAINING_USE_CASES
    orphans = {cls.__name__ for cls in _use_cases() if attrs.has(cls)} - {c.__name__ for c in called}
    # CheckHealth runs under the HealthMonitor of the API and the workers; the rest must be reachable.
    assert orphans <= {"CheckHealth", "HealthMonitor"}, orphans


def _config(tmp_path: Path, **env: str) -> AppConfig:
    return AppConfig.from_env(
        {
            "MODEL_CACHE_DIR": str(tmp_path),
            "MEDIA_DIR": str(tmp_path / "media"),
            "JWT_SECRET": JWT_SECRET,
            **env,
        }
    )


async def test_the_api_container_builds_what_its_routes_ask_for(
    migrated_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    container = build_container(_config(tmp_path, DATABASE_URL=migrated_database_url, REDIS_URL=redis_url))
    wanted = _injected(container)
    assert SubmitJob in wanted and len(wanted) >= 6
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        for kind in (*wanted, JobStatistics, HealthMonitor):
            assert isinstance(container[kind], kind)
    finally:
        await lifecycle.close()
    assert "speech" not in lifecycle.names and "models" not in lifecycle.names, "the API decodes nothing"


async def _assert_builds(container: Container, kinds: Iterable[type]) -> Lifecycle:
    """Each of ``kinds`` resolves to an instance of itself while the container's resources are open."""
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        for kind in kinds:
            assert isinstance(container[kind], kind)
    finally:
        await lifecycle.close()
    return lifecycle


async def test_the_worker_container_builds_what_the_worker_runs(
    migrated_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, DATABASE_URL=migrated_database_url, REDIS_URL=redis_url)
    await _assert_builds(build_worker_container(config), (*WORKER_USE_CASES, HealthMonitor))


async def test_the_training_container_builds_what_train_and_eval_run(
    migrated_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    config = _config(tmp_path, DATABASE_URL=migrated_database_url, REDIS_URL=redis_url)
    lifecycle = await _assert_builds(build_training_container(config), TRAINING_USE_CASES)
    assert "speech" not in lifecycle.names, "training reads cached features; it decodes nothing"


@pytest.mark.parametrize(
    "use_case", sorted(CLI_USE_CASES, key=lambda c: c.__name__), ids=lambda c: c.__name__
)
async def test_the_local_container_builds_what_the_cli_runs(use_case: type, tmp_path: Path) -> None:
    config = AppConfig.from_env({"CACHE_DIR": str(tmp_path / "cache"), "MODEL_CACHE_DIR": str(tmp_path)})
    container = build_local_container(config, media_root=tmp_path / "media")
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        assert isinstance(container[use_case], use_case)
    finally:
        await lifecycle.close()

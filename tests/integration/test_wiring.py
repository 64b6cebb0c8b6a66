"""Every use case resolves from the real containers, so a wiring mistake fails here, not in production."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import attrs
import pytest

import application
from application.check_health import HealthMonitor
from application.config import AppConfig
from entrypoints.bootstrap import build_container, build_local_container
from entrypoints.lifecycle import Lifecycle


def _use_cases() -> list[type]:
    found = []
    for module_info in pkgutil.iter_modules(application.__path__):
        module = importlib.import_module(f"application.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # A use case is an attrs class of this module that defines __call__.
            if cls.__module__ == module.__name__ and attrs.has(cls) and "__call__" in cls.__dict__:
                found.append(cls)
    return found


def test_the_use_cases_are_found() -> None:
    names = {cls.__name__ for cls in _use_cases()}
    assert {"SubmitJob", "ProcessJob", "CheckHealth"} <= names


@pytest.mark.parametrize("use_case", _use_cases(), ids=lambda c: c.__name__)
async def test_service_container_builds_every_use_case(
    use_case: type, migrated_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    config = AppConfig.from_env(
        {"DATABASE_URL": migrated_database_url, "REDIS_URL": redis_url, "MODEL_CACHE_DIR": str(tmp_path)}
    )
    container = build_container(config)
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        assert isinstance(container[use_case], use_case)
        assert isinstance(container[HealthMonitor], HealthMonitor)
    finally:
        await lifecycle.close()


# The CLI has no dependencies to check, so it wires no CheckHealth.
@pytest.mark.parametrize(
    "use_case", [c for c in _use_cases() if c.__name__ != "CheckHealth"], ids=lambda c: c.__name__
)
async def test_local_container_builds_every_use_case(use_case: type, tmp_path: Path) -> None:
    config = AppConfig.from_env({"CACHE_DIR": str(tmp_path / "cache"), "MODEL_CACHE_DIR": str(tmp_path)})
    container = build_local_container(config, media_root=tmp_path / "media")
    lifecycle = container[Lifecycle]
    await lifecycle.start()
    try:
        assert isinstance(container[use_case], use_case)
    finally:
        await lifecycle.close()

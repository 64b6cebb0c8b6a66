"""docker/ cannot be built here; these checks keep it true to the code it ships."""

import re
from pathlib import Path
from typing import Any

import yaml

from application.config import AppConfig
from entrypoints.cli import _parser

DOCKER = Path(__file__).resolve().parents[2] / "docker"
# Subcommands the deployment files already name that later issues add to the CLI.
PLANNED_COMMANDS = {"worker", "train"}


def _documents() -> list[dict[str, Any]]:
    docs = [yaml.safe_load((DOCKER / "compose.yaml").read_text())]
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _walk(node: Any, key: str | None = None):
    yield key, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def _env_names() -> set[str]:
    names: set[str] = set()
    for doc in _documents():
        for key, node in _walk(doc):
            if key in {"environment", "x-app-env", "data", "stringData"} and isinstance(node, dict):
                names.update(k for k in node if k != "<<")
            if key == "env" and isinstance(node, list):
                names.update(item["name"] for item in node)
    dockerfile = (DOCKER / "Dockerfile").read_text()
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", dockerfile, flags=re.M):
        names.update(re.findall(r"([A-Z_][A-Z0-9_]*)=", block))
    return names


def _containers() -> list[dict[str, Any]]:
    found = []
    for doc in _documents():
        for key, node in _walk(doc):
            if key == "containers" and isinstance(node, list):
                found.extend(node)
    return found


def test_compose_defines_the_four_services() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    assert {"postgres", "redis", "api", "worker"} <= set(compose["services"])


def test_every_env_var_set_is_one_the_app_reads() -> None:
    runtime_only = {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
        "PIP_NO_CACHE_DIR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
    }
    postgres_image = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    names = _env_names() - runtime_only - postgres_image
    assert names, "no environment found: the parser is broken"
    unknown = names - AppConfig.variables()
    assert not unknown, f"deployment files set variables AppConfig does not read: {sorted(unknown)}"


def test_api_probes_use_the_health_endpoints() -> None:
    api = next(c for c in _containers() if c["name"] == "api")
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/detailed"


def test_container_commands_are_cli_subcommands() -> None:
    parser = _parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    known = set(subparsers.choices) | PLANNED_COMMANDS  # type: ignore[arg-type]
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    commands = [s["command"][0] for s in compose["services"].values() if isinstance(s.get("command"), list)]
    commands = [c for c in commands if not c.startswith("redis")]
    commands += [c["args"][0] for c in _containers()]
    assert commands
    assert set(commands) <= known, set(commands) - known


def test_training_runs_on_a_schedule() -> None:
    cron = yaml.safe_load((DOCKER / "k8s" / "training-cronjob.yaml").read_text())
    assert cron["kind"] == "CronJob"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"

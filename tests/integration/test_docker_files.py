"""docker/ cannot be built here; these checks keep it true to the code it ships."""

import re
from pathlib import Path
from typing import Any

import yaml

from application.config import AppConfig
from entrypoints.cli import _parser

DOCKER = Path(__file__).resolve().parents[2] / "docker"
TRAINING_CRONJOB = "opusclip-train"


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


def _commands() -> list[list[str]]:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    commands = [s["command"] for s in compose["services"].values() if isinstance(s.get("command"), list)]
    commands = [c for c in commands if not c[0].startswith("redis")]
    for doc in _documents():
        for key, node in _walk(doc):
            if key == "containers" and isinstance(node, list):
                commands += [container["args"] for container in node]
    return commands


def _parses(argv: list[str]) -> bool:
    try:
        _parser().parse_args(argv)
    except SystemExit:
        return False
    return True


def test_container_commands_parse_as_cli_commands() -> None:
    commands = _commands()
    assert {c[0] for c in commands} >= {"serve", "worker", "migrate", "train"}
    unknown = [c for c in commands if not _parses(c)]
    assert not unknown, f"the CLI does not accept: {unknown}"


def test_the_training_cronjob_runs_the_train_command() -> None:
    cron = next(d for d in _documents() if d.get("metadata", {}).get("name") == TRAINING_CRONJOB)
    containers = next(node for key, node in _walk(cron) if key == "containers")
    assert [c["args"] for c in containers] == [["train"]]


def test_worker_probes_and_scrapes_its_metrics_port() -> None:
    worker = next(c for c in _containers() if c["name"] == "worker")
    port = int(worker["args"][worker["args"].index("--metrics-port") + 1])
    assert worker["ports"][0]["containerPort"] == port
    assert worker["livenessProbe"]["httpGet"]["path"] == "/health"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/health/detailed"


def test_training_runs_on_a_schedule() -> None:
    cron = yaml.safe_load((DOCKER / "k8s" / "training-cronjob.yaml").read_text())
    assert cron["kind"] == "CronJob"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"

"""A schema fuzzer (schemathesis) drives every operation of the live API from /openapi.json: no response is
a server error, and every response matches what the document promises (status, content type, body)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from tests.e2e.service import Proc, fresh_database, service_env, start_api, token

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "ignored_auth",
        "unsupported_method",
    )
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    root = tmp_path_factory.mktemp("fuzz")
    with fresh_database() as database_url:
        proc = start_api(service_env(database_url, root, FETCH_ALLOWED_NETWORKS=""), root)
        try:
            yield proc
        finally:
            proc.stop()


def test_every_operation_survives_the_fuzzer(api: Proc, tmp_path: Path) -> None:
    assert httpx.get(f"{api.url}/openapi.json").status_code == 200
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = [
        str(schemathesis),
        "run",
        f"{api.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token('fuzzer')}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "30",
        "--seed",
        "20261130",
        "--workers",
        "2",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        "--no-color",
        # The event stream of a job no worker runs stays open (up to five minutes): the fuzzer would wait
        # that long on each case. test_service_jobs.py follows a stream to its end, and checks its 404.
        "--exclude-operation-id",
        "jobEvents",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    # cwd: schemathesis keeps a cache of what it found in ./.schemathesis
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    reports = list(tmp_path.glob("*.xml"))
    tested = {case.get("name") for report in reports for case in ElementTree.parse(report).iter("testcase")}
    documented = {
        f"{method.upper()} {path}"
        for path, item in httpx.get(f"{api.url}/openapi.json").json()["paths"].items()
        for method, operation in item.items()
        if operation["operationId"] not in ("jobEvents", "openapi")
    }
    assert tested == documented, f"not fuzzed: {documented - tested}"

"""The studio is served without a token under a strict CSP, loads nothing from elsewhere, inserts no HTML;
and the per-second scores its plot draws come from the attempt that saved the job, or from none."""

from __future__ import annotations

import fnmatch
import html.parser
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

import application.process_job as process_job_module
from application.config import AppConfig
from application.job_scores import SCORES_DETAIL, GetJobScores, write_scores
from application.process_job import ProcessJob
from application.submit_job import SubmitJob, SubmitJobRequest
from domain.errors import LeaseLost, NotFound
from entrypoints.http.app import create_app
from entrypoints.http.studio import STUDIO_DIR, studio_routes
from tests.unit.fakes import (
    process_job_parts,
)
from tests.unit.test_http_support import make_container

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client() -> TestClient:
    container = make_container()
    config = AppConfig(max_upload_bytes=12345)
    return TestClient(create_app(container, studio_routes(config)))


def _policy(header: str) -> dict[str, str]:
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def test_the_page_is_served_without_a_token_under_a_strict_csp(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Video-OpusClip studio</title>" in response.text
    policy = _policy(response.headers["content-security-policy"])
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_assets_and_config_carry_the_same_headers(client: TestClient) -> None:
    page_policy = client.get("/").headers["content-security-policy"]
    for path, kind in [
        ("/studio/app.js", "javascript"),
        ("/studio/studio.css", "text/css"),
        ("/studio/icon.svg", "image/svg+xml"),
        ("/studio/config.json", "application/json"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], path
        assert response.headers["content-security-policy"] == page_policy, path
    assert client.get("/studio/nothing.js").status_code == 404
    assert client.get("/studio/../app.py").status_code == 404


def test_config_tells_the_page_the_upload_limit_and_the_form_defaults(client: TestClient) -> None:
    config = client.get("/studio/config.json").json()
    assert config["max_upload_bytes"] == 12345
    assert config["aspects"] == ["source", "9:16", "1:1"]
    assert config["defaults"]["max_clips"] == 5 and config["defaults"]["burn_captions"] is False


class _Markup(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.loads: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.problems += [f"{tag} {name}=" for name in names if name.startswith("on") or name == "style"]
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script" and not names.get("src"):
            self.problems.append("inline <script>")
        self._in_script = tag == "script"
        self.loads += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script body")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


def test_the_page_has_no_inline_code_and_loads_only_its_own_files() -> None:
    markup = _Markup()
    markup.feed((STUDIO_DIR / "index.html").read_text())
    assert markup.problems == []
    for target in markup.loads:
        # Relative: the page works under a path prefix (a proxy's root path) as well as at /.
        assert target.startswith(("studio/", "#")), target
        if target.startswith("studio/"):
            assert (STUDIO_DIR / target.removeprefix("studio/")).is_file(), target


@pytest.mark.parametrize("module", sorted(p.name for p in STUDIO_DIR.glob("*.js")))
def test_scripts_insert_text_never_html_and_import_only_their_neighbours(module: str) -> None:
    source = (STUDIO_DIR / module).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, (module, sink)
    for target in re.findall(r"""^\s*import .* from "([^"]+)";""", source, re.MULTILINE):
        assert target.startswith("./") and (STUDIO_DIR / target).is_file(), (module, target)
    assert not re.search(r"""["'`]https?://""", source.replace("http://www.w3.org/2000/svg", "")), module


def test_every_studio_file_ships_in_the_package() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = patterns["entrypoints.http"]
    for path in STUDIO_DIR.rglob("*"):
        if path.is_file():
            relative = path.relative_to(STUDIO_DIR.parent).as_posix()
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in shipped), relative


# ---- the scores behind the plot ------------------------------------------------------------------


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, object]:
    return process_job_parts(tmp_path)


async def _submit(parts: dict[str, object]) -> str:
    submit = SubmitJob(parts["uow"])  # type: ignore[arg-type]  # the fixture's dict holds the ports
    result = await submit(SubmitJobRequest(owner="u1", source="talk.mp4", options={"max_clips": 2}))
    return result.job.id


async def test_a_finished_job_serves_the_scores_its_clips_were_picked_from(parts: dict) -> None:
    job_id = await _submit(parts)
    scores = GetJobScores(parts["uow"], parts["store"])
    with pytest.raises(NotFound):
        await scores("u1", job_id)  # not done yet

    result = await ProcessJob(**parts)(job_id)
    found = await scores("u1", job_id)
    assert found.step_seconds == 1.0 and len(found.scores) == 120
    assert np.allclose(found.scores, result.scores, atol=1e-4)
    with pytest.raises(NotFound):
        await scores("someone-else", job_id)


async def test_an_attempt_that_lost_the_job_publishes_no_scores(
    parts: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = await _submit(parts)
    store = parts["uow"].store

    def write_then_lose_the_job(folder: Path, values: np.ndarray) -> Path:
        path = write_scores(folder, values)
        store.jobs[job_id].lease_token = "another-attempt"  # taken over before this one saves
        return path

    monkeypatch.setattr(process_job_module, "write_scores", write_then_lose_the_job)
    with pytest.raises(LeaseLost):
        await ProcessJob(**parts)(job_id)
    assert SCORES_DETAIL not in store.jobs[job_id].details
    assert list(parts["store"].root.rglob("scores.json")) == []


def test_scores_files_hold_finite_numbers(tmp_path: Path) -> None:
    path = write_scores(tmp_path, np.array([0.5, np.nan, np.inf, 0.25], dtype=np.float32))
    assert json.loads(path.read_text()) == {"step_seconds": 1.0, "scores": [0.5, 0.0, 0.0, 0.25]}

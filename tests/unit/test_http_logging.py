from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from entrypoints.http.logging import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_from_structlog_and_stdlib_share_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    structlog.contextvars.bind_contextvars(request_id="abc123")
    structlog.get_logger("opusclip.test").info("job.done", job_id="j1")
    structlog.get_logger("opusclip.test").debug("too.chatty")
    logging.getLogger("uvicorn.error").warning("from uvicorn %s", "here")
    records = lines(capsys.readouterr().out)
    assert [r["event"] for r in records] == ["job.done", "from uvicorn here"]
    ours, theirs = records
    assert ours["job_id"] == "j1" and ours["level"] == "info" and ours["request_id"] == "abc123"
    assert theirs["level"] == "warning" and theirs["request_id"] == "abc123"
    assert all("timestamp" in r for r in records)


def test_exceptions_become_a_string_field_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", "json")
    try:
        raise ValueError("kaput")
    except ValueError:
        structlog.get_logger("opusclip.test").exception("it.failed")
    (record,) = lines(capsys.readouterr().out)
    assert record["event"] == "it.failed"
    assert "ValueError: kaput" in str(record["exception"])


def test_console_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "console")
    structlog.get_logger("opusclip.test").debug("hello.console", answer=42)
    out = capsys.readouterr().out
    assert "hello.console" in out and "answer" in out and "42" in out
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.strip().splitlines()[-1])

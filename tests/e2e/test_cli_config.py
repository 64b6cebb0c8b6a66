"""A bad setting stops every command at once with one line naming the variable."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", [["serve"], ["migrate"]])
def test_cli_stops_on_bad_config_with_one_line(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *command],
        env={"DEVICE": "tpu", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "DEVICE='tpu'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

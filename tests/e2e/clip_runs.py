"""Finding every process an `opusclip` run started, wherever it went: each run gets a mark in its
environment, which every process it starts inherits (re-parented orphans included)."""

from __future__ import annotations

import time
import uuid

import psutil

MARK = "OPUSCLIP_TEST_RUN"


def new_mark() -> dict[str, str]:
    """Environment entries that mark one run."""
    return {MARK: uuid.uuid4().hex}


def survivors(env: dict[str, str], grace: float = 3.0) -> list[str]:
    """Processes carrying the run's mark still alive after ``grace`` seconds (zombies are dead)."""
    mark = env[MARK]
    deadline = time.monotonic() + grace
    while True:
        found = []
        for process in psutil.process_iter(["pid", "status"]):
            try:
                if process.info["status"] != psutil.STATUS_ZOMBIE and process.environ().get(MARK) == mark:
                    found.append(f"{process.info['pid']} {' '.join(process.cmdline())[:160]}")
            except (psutil.Error, OSError):  # gone, or not ours to read
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)

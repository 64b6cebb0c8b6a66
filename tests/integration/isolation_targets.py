"""What the isolation tests run in child processes: module-level functions, so they pickle by name.

``python -c "from tests.integration.isolation_targets import main; main()" SCENARIO PID_FILE`` is a parent
process the tests can kill or watch from outside (see ``main``).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
from pathlib import Path

import attrs

from adapters.media.isolation import Isolation
from domain.errors import OpusClipError
from domain.media import Analysis, Transcript, Word
from domain.ports import Progress, no_progress

MiB = 1024**2


def add(a: int, b: int) -> int:
    return a + b


def imported(module: str) -> bool:
    return module in sys.modules


def count(steps: int, pause: float, progress: Progress) -> int:
    for step in range(1, steps + 1):
        time.sleep(pause)
        progress(step / steps)
    return steps


def raise_error(kind: type[Exception], message: str) -> None:
    raise kind(message)


def segfault() -> None:
    ctypes.string_at(0)


def hang(pid_file: str) -> None:
    write_pids(pid_file)
    time.sleep(3600)


def sleep_then_return(value: int, seconds: float) -> tuple[int, int]:
    time.sleep(seconds)
    return value, os.getpid()


def hog(total_bytes: int) -> int:
    chunks = [bytearray(64 * MiB) for _ in range(total_bytes // (64 * MiB))]
    return len(chunks)


@attrs.define
class NotingTranscriber:
    """A Transcriber that notes in a file which process transcribed and which closed it."""

    notes: str
    version: str = "noting-1"

    def transcribe(self, path: Path, analysis: Analysis, progress: Progress = no_progress) -> Transcript:
        self._note("transcribe")
        return Transcript((Word("hello", 0.0, 0.5),))

    def close(self) -> None:
        self._note("close")

    def _note(self, what: str) -> None:
        with open(self.notes, "a") as notes:
            notes.write(f"{os.getpid()} {what}\n")


def write_pids(pid_file: str) -> None:
    """This process's pid and its parent's (the forkserver), written whole or not at all."""
    part = Path(pid_file + ".part")
    part.write_text(f"{os.getpid()} {os.getppid()}")
    part.rename(pid_file)


def main() -> None:
    """A parent process with an isolated call in flight that writes its child's pids to PID_FILE.

    ``sleep``: the call sleeps until this process is killed. ``close``: once the call runs, close the
    isolation and print how the caller's call ended (JSON: error type, message, seconds after close) and
    how a call made after close() ended.
    """
    scenario, pid_file = sys.argv[1:3]
    isolation = Isolation(preload=(__name__,))
    isolation.start()
    if scenario == "sleep":
        isolation.run(hang, pid_file, memory_bytes=256 * MiB, timeout_seconds=600)
        return
    outcome: dict[str, object] = {}
    ended: list[float] = []

    def call() -> None:
        try:
            isolation.run(hang, pid_file, memory_bytes=256 * MiB, timeout_seconds=600)
        except OpusClipError as error:
            outcome.update(error=type(error).__name__, message=error.message)
        ended.append(time.monotonic())

    caller = threading.Thread(target=call)
    caller.start()
    while not Path(pid_file).exists():
        time.sleep(0.02)
    closed_at = time.monotonic()
    isolation.close()
    caller.join(10)
    outcome["seconds"] = ended[0] - closed_at if ended else None
    try:
        isolation.run(add, 1, 2, memory_bytes=256 * MiB, timeout_seconds=10)
    except OpusClipError as error:
        outcome["afterwards"] = type(error).__name__
    print(json.dumps(outcome))

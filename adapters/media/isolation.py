"""Media calls in child processes, so a crash, a hang or a memory blow-up in FFmpeg fails one call, not
the worker.

Each call gets a fresh child from multiprocessing's forkserver: a clean process, started once, that has
already imported av, numpy, torch and the media adapters, so a call costs ~40 ms (fork, hand-over, exit)
instead of ~3 s of imports. multiprocessing keeps one forkserver per process (its preload list is
process-wide, and ``close()`` stops it for everyone), so a process has one ``Isolation``.

The memory limit is RLIMIT_DATA, not RLIMIT_AS. Measured (torch 2.13 CPU, PyAV 18): the forkserver holds
1.04 GB of address space but 0.39 GB of data mappings and 0.28 GB resident; analysing the 40 s sample
peaks at 1.29 GB address space, 0.47 GB data. Address space is not memory: every thread reserves a
64 MiB malloc arena and an 8 MiB stack, so 32 idle threads added 1.2 GB of address space, 0.26 GB of data
and 6 MB resident. Since the encoder and torch size their thread pools by core count, an address-space
limit would fail a big machine for its cores; the data limit counts what can actually be written to.
"""

from __future__ import annotations

import errno
import faulthandler
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar, cast

import attrs

from adapters.process_guard import die_with_parent
from domain.errors import CorruptMedia, DependencyUnavailable, OpusClipError
from domain.ports import Progress

log = logging.getLogger(__name__)

T = TypeVar("T")

# "__main__" first, as multiprocessing does by default: otherwise every child re-imports the program's
# main script (the CLI and everything it wires) after its fork.
PRELOAD: tuple[str, ...] = (
    "__main__",
    "av",
    "numpy",
    "torch",
    "adapters.media.analyzer",
    "adapters.media.renderer",
    "adapters.speech.whisper",
    "adapters.speech.vad",
    "adapters.media.isolated",
)

_WARM_UP_MEMORY = 1024**3
_WARM_UP_SECONDS = 300.0  # importing torch from a cold disk can take a minute

# Once its result is sent a child only has to exit; one that takes longer is stuck in clean-up.
_EXIT_GRACE_SECONDS = 5.0

_PROGRESS, _RESULT, _RAISED, _FAILED, _OUT_OF_MEMORY = "progress", "result", "raised", "failed", "memory"


@attrs.define(eq=False)
class _Call:
    process: BaseProcess
    stopped: bool = False  # killed by kill_all() or close(), not by its own doing


@attrs.define
class Isolation:
    """Runs a picklable callable in a fresh child process with a memory limit and a deadline.

    ``start()`` at start-up, so the forkserver's imports are not the first job's wait (``run`` starts it
    otherwise); ``close()`` kills running children and stops it. Calls may come from several threads.
    """

    preload: tuple[str, ...] = PRELOAD
    _context: multiprocessing.context.ForkServerContext = attrs.field(
        init=False, factory=lambda: multiprocessing.get_context("forkserver")
    )
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)
    _running: set[_Call] = attrs.field(init=False, factory=set)
    _started: bool = attrs.field(init=False, default=False)
    _closed: bool = attrs.field(init=False, default=False)

    def start(self) -> None:
        """Start the forkserver and wait until it has imported ``preload`` (seconds)."""
        with self._lock:
            self._start()
        started = time.monotonic()
        # The first fork waits for the imports, and a preload that fails shows here, not in a job.
        server = self.run(os.getppid, memory_bytes=_WARM_UP_MEMORY, timeout_seconds=_WARM_UP_SECONDS)
        log.info("media forkserver %d ready in %.1f s", server, time.monotonic() - started)

    def run(
        self,
        function: Callable[..., T],
        *args: Any,
        memory_bytes: int,
        timeout_seconds: float,
        progress: Progress | None = None,
    ) -> T:
        """``function(*args)`` in a child; with ``progress``, ``function(*args, progress=...)`` whose calls
        reach ``progress`` here, in order.

        Raises what the child raised when it is an OpusClipError, RuntimeError for any other exception,
        CorruptMedia when the child crashes, runs out of memory or misses the deadline, and
        DependencyUnavailable when ``kill_all()`` or ``close()`` stopped it.
        """
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_child,
            args=(writer, function, args, memory_bytes, progress is not None),
            name=f"isolated-{getattr(function, '__name__', 'call')}",
        )
        call = _Call(process)
        answered = False
        try:
            with self._lock:
                self._start()
                process.start()
                self._running.add(call)
            writer.close()  # the child holds the only write end: its death is end-of-file here
            kind, payload = self._wait(call, reader, timeout_seconds, progress)
            answered = True
        finally:
            writer.close()
            reader.close()
            with self._lock:
                self._running.discard(call)
            _reap(process, _EXIT_GRACE_SECONDS if answered else 0.0)
        return cast(T, _unpack(kind, payload, memory_bytes))

    def kill_all(self) -> None:
        """SIGKILL every running child (the worker's shutdown grace ran out); their callers get
        DependencyUnavailable."""
        with self._lock:
            self._kill_running()

    def close(self) -> None:
        """Kill running children and stop the forkserver; later calls raise DependencyUnavailable."""
        with self._lock:
            self._closed = True
            self._kill_running()
            started, self._started = self._started, False
        if started:
            _stop_forkserver()

    def _start(self) -> None:
        if self._closed:
            raise DependencyUnavailable("media isolation is closed: the worker is shutting down")
        if not self._started:
            # A forkserver someone else started (a recogniser pool in this process) has imported nothing
            # of ours, and every child would spend seconds importing torch: start ours in its place.
            _stop_forkserver()
            self._context.set_forkserver_preload([__name__, *self.preload])
            forkserver.ensure_running()
            self._started = True

    def _kill_running(self) -> None:
        for call in self._running:
            call.stopped = True
            call.process.kill()

    def _wait(
        self, call: _Call, reader: Connection, timeout_seconds: float, progress: Progress | None
    ) -> tuple[str, Any]:
        process = call.process
        deadline = time.monotonic() + timeout_seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                process.kill()
                process.join()
                log.warning(
                    "isolated call %s ran past its %.1f s deadline: killed", process.name, timeout_seconds
                )
                raise CorruptMedia(f"decoding did not finish within {_seconds(timeout_seconds)} s")
            ready = wait([reader, process.sentinel], remaining)
            if not ready:
                continue
            # A child that died may have sent its last words first: read them before looking at its death.
            if reader not in ready and not reader.poll():
                break
            try:
                kind, payload = reader.recv()
            except (EOFError, OSError):
                break  # the child is gone without a word
            if kind != _PROGRESS:
                return kind, payload
            if progress is not None:
                progress(payload)
        # The forkserver reaps the child and then writes its status to the sentinel. Process.start() reads
        # every earlier child's sentinel too, and two readers lose the status: read it under the lock.
        wait([process.sentinel], _EXIT_GRACE_SECONDS)
        with self._lock:
            code = process.exitcode
        raise _death(call, code)


def _stop_forkserver() -> None:
    """Close the forkserver's "alive" pipe and wait for it to exit (a no-op when none runs); it exits once
    no child holds that pipe, and children that called die_with_parent() do not."""
    # multiprocessing has no public way to stop its forkserver; this is the one its own tests use.
    forkserver._forkserver._stop()  # type: ignore[attr-defined]


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.3g}"


def _death(call: _Call, code: int | None) -> Exception:
    if call.stopped:
        return DependencyUnavailable("decoding was stopped: the worker is shutting down")
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        log.warning("isolated call %s died by %s", call.process.name, name)
        if -code == signal.SIGKILL:
            return CorruptMedia("the decoder was killed (SIGKILL) on this file, most likely out of memory")
        return CorruptMedia(f"the decoder crashed ({name}) on this file")
    return RuntimeError(f"the isolated call {call.process.name} exited with status {code} and no result")


def _unpack(kind: str, payload: Any, memory_bytes: int) -> Any:
    if kind == _RESULT:
        return payload
    if kind == _RAISED:
        error, trace = payload
        log.debug("isolated call raised %s in its child:\n%s", type(error).__name__, trace)
        raise error
    if kind == _OUT_OF_MEMORY:
        log.warning("isolated call ran out of memory in its child:\n%s", payload)
        raise CorruptMedia(f"decoding needed more than {memory_bytes / 2**30:.3g} GiB of memory")
    name, message, trace = payload
    log.error("isolated call failed in its child:\n%s", trace)
    raise RuntimeError(f"{name}: {message}")


def _reap(process: BaseProcess, grace: float) -> None:
    if process.pid is None:  # never started
        return
    process.join(grace)
    if process.exitcode is None:
        process.kill()
        process.join()
    process.close()


# ---------------------------------------------------------------- in the child


def _child(
    conn: Connection, function: Callable[..., Any], args: tuple[Any, ...], memory_bytes: int, reports: bool
) -> None:
    die_with_parent()
    faulthandler.enable()  # a crash prints each thread's Python stack: which step of which call died
    # The parent alone decides when a child stops (deadline, shutdown grace): a Ctrl-C or SIGTERM sent to
    # the whole process group must not fail a call the worker means to finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _limit_memory(memory_bytes)
    lock = threading.Lock()  # adapters report progress from their own threads

    def report(fraction: float) -> None:
        with lock:
            conn.send((_PROGRESS, float(fraction)))

    try:
        message: tuple[str, Any] = (_RESULT, function(*args, progress=report) if reports else function(*args))
    except BaseException as error:  # everything goes back to the parent, which decides
        message = _failure(error)
    with lock:
        try:
            conn.send(message)
        except Exception as error:  # the result does not pickle (or pickling it ran out of memory)
            conn.send(_failure(error))


def _limit_memory(extra_bytes: int) -> None:
    """Cap data mappings at what the child starts with (the forkserver's, shared copy-on-write) plus
    ``extra_bytes``: the limit is what this call may add, whatever the preloaded libraries weigh."""
    if not sys.platform.startswith("linux"):
        return
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmData:"))
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = kib * 1024 + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _failure(error: BaseException) -> tuple[str, Any]:
    trace = "".join(traceback.format_exception(error))
    if _out_of_memory(error):
        return _OUT_OF_MEMORY, trace
    if isinstance(error, OpusClipError) and _pickles(error):
        return _RAISED, (error, trace)
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return _FAILED, (name, str(error), trace)


def _out_of_memory(error: BaseException | None) -> bool:
    # Adapters wrap FFmpeg's errors (av.error.MemoryError among them) in MediaError: look down the chain.
    while error is not None:
        # torch's CPU allocator reports a refused allocation as a RuntimeError, not a MemoryError.
        if isinstance(error, MemoryError) or "DefaultCPUAllocator: can't allocate memory" in str(error):
            return True
        # A thread whose stack does not fit under the limit is not started: FFmpeg passes on EAGAIN from
        # pthread_create (the EAGAIN of its send/receive calls never reaches Python: PyAV handles it).
        if isinstance(error, OSError) and error.errno in (errno.ENOMEM, errno.EAGAIN) and _from_ffmpeg(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _from_ffmpeg(error: OSError) -> bool:
    return error.errno == errno.ENOMEM or type(error).__module__.startswith("av.")


def _pickles(error: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # an error class whose constructor takes more than its message
        return False
    return True

"""Child processes that cannot outlive their parent, even when the parent is killed with SIGKILL; a
command's work in such a child, supervised; and a janitor that tidies up after a parent killed that way."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn, Self

import attrs

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# The pid of the process that forked this one, when that process had imported this module: the
# ``before`` hook runs in the parent just before fork, so the child's copy names its real parent.
_forking: int | None = None
_forked_by: int | None = None


def _before_fork() -> None:
    global _forking
    _forking = os.getpid()


def _in_child() -> None:
    global _forked_by
    _forked_by = _forking


os.register_at_fork(before=_before_fork, after_in_child=_in_child)


def die_with_parent(parent: int | None = None) -> None:
    """Have the kernel SIGKILL this process when its parent exits (Linux; a no-op elsewhere).

    Call it first thing in a child.

    ``parent`` is the pid the parent had before the fork; by default, the forking process's pid when it
    had imported this module. If the parent died before the request took effect, this process was
    already handed to a reaper and the request would never fire: exit now instead. With no known
    parent (this module was first imported after the fork) that check is skipped.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    expected = parent if parent is not None else _forked_by
    if expected is not None and os.getppid() != expected:
        os._exit(1)
    _release_forkserver()


def _release_forkserver() -> None:
    """Let a forkserver parent exit when its own client does.

    multiprocessing hands each forkserver child the write end of the server's "alive" pipe, so that the
    server, which exits at end-of-file on it, outlives its client until every child is gone. A child that
    means to die with the server would then hold it up forever: drop that copy.
    """
    module = sys.modules.get("multiprocessing.forkserver")
    if module is None:
        return
    server = module._forkserver
    alive = getattr(server, "_forkserver_alive_fd", None)
    # A process that runs a forkserver of its own holds the pipe's write end as that server's client.
    if alive is None or getattr(server, "_forkserver_pid", None) is not None:
        return
    os.close(alive)
    server._forkserver_alive_fd = None  # private, like the whole pipe: no public way exists


# ---------------------------------------------------------------- a command's work in a child process

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(Exception):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) reached this process."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    for each in STOP_SIGNALS:  # the first one decides; a second must not interrupt the clean-up
        signal.signal(each, signal.SIG_IGN)
    raise Stopped(signum)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Inside: the first stop signal raises Stopped in the main thread, later ones are ignored."""
    previous = {each: signal.getsignal(each) for each in STOP_SIGNALS}
    for each in STOP_SIGNALS:
        signal.signal(each, _raise_stopped)
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def ignore_stop_signals() -> None:
    """From now on (until ``stop_signals_raise()`` is left) stop signals are ignored: what is left to do
    must not be left half done."""
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)


@attrs.frozen
class Ended:
    """How a supervised child ended: its exit status, or the signal that killed it."""

    status: int | None = None
    signum: int | None = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


def run_supervised(work: Callable[[], int]) -> Ended:
    """``work()`` in a forked child that the kernel kills when this process dies; waits for it to end.

    Call it inside ``stop_signals_raise()``: a stop signal then kills the child (SIGKILL) and raises
    Stopped here once it is gone. In the child, stop signals have their default effect (a Ctrl-C sent to
    the terminal's process group ends it at once, silently) and ``work``'s return value is its exit status.
    Fork only from a process that runs no threads of its own making.
    """
    parent = os.getpid()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:
        _child(work, parent)
    try:
        _, status = os.waitpid(pid, 0)
    except Stopped:
        _kill(pid)
        raise
    if os.WIFSIGNALED(status):
        return Ended(signum=os.WTERMSIG(status))
    return Ended(status=os.waitstatus_to_exitcode(status))


def _child(work: Callable[[], int], parent: int) -> NoReturn:
    code = 1
    try:
        for each in STOP_SIGNALS:
            signal.signal(each, signal.SIG_DFL)
        die_with_parent(parent)
        code = work()
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else int(leaving.code is not None)
    except BaseException:  # work() reports its own errors; this is a last resort
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# Runs in a bare interpreter (-I -S): reads its stdin to the end; anything but "done" means that every
# holder of the pipe's write end (the command and its forked children) died without tidying up.
_SWEEP = (
    "import os, shutil, sys\n"
    "said = b''\n"
    "while block := os.read(0, 64):\n"
    "    said += block\n"
    "if said != b'done':\n"
    "    for folder in sys.argv[1:]:\n"
    "        shutil.rmtree(folder, ignore_errors=True)\n"
)


class Janitor:
    """A small process that removes ``folders`` when this process and its forked children are all gone
    without having dismissed it: the one tidy-up that survives this process being killed by SIGKILL.

    Start it before creating the folders and before forking the children that write into them (they
    inherit the pipe it watches, so it waits for them too); ``dismiss()`` once the folders are dealt with.
    """

    def __init__(self, folders: Sequence[Path]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _SWEEP, *map(str, folders)],
            stdin=subprocess.PIPE,
            # Nothing to say, and a caller reading this command's output to its end must not wait on it.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the terminal's process group must not reach it
        )

    def dismiss(self) -> None:
        stdin = self._process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.write(b"done")
            with contextlib.suppress(OSError):
                stdin.close()
        self._process.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.dismiss()

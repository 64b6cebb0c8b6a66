"""Child processes that cannot outlive their parent, even when the parent is killed with SIGKILL."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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

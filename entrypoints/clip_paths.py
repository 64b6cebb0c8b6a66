"""Where ``opusclip clip`` reads and writes, checked before any work: the input is a readable file, the
output folder can be written, and nothing the command writes there can be the input."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path

import attrs

# What a run writes into --out, and so replaces there.
OUTPUTS = ("clip_*.mp4", "clip_*.srt", "clip_*.vtt", "clips.json")


class Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class ClipPaths:
    source: Path
    identity: tuple[int, int]  # the input's device and inode: the same file under any name or link
    out: Path
    staging: Path  # hidden, inside --out when it exists, otherwise in its nearest existing folder

    def guard(self, targets: Iterable[Path]) -> None:
        """Refuse when any of ``targets`` is the input (compared by device and inode)."""
        for target in targets:
            if _identity(target) == self.identity:
                raise Refused(f"{target} is the input {self.source}: it is never written over")


def check_paths(source: Path, out: Path) -> ClipPaths:
    """The input's identity and a staging folder's place; Refused for an input that cannot be read, an
    --out that cannot be written or holds the input, or one that is the input."""
    identity = _readable(source)
    out = Path(os.path.abspath(out))
    if out.is_symlink() and not out.exists():
        raise Refused(f"--out {out}: a broken symlink or a symlink loop")
    if out.exists():
        if not out.is_dir():
            if _identity(out) == identity:
                raise Refused(f"--out {out} is the input file")
            raise Refused(f"--out {out} exists and is not a folder")
        inside = _identity(out)
        if out.resolve() in source.resolve().parents or any(
            _identity(folder) == inside for folder in source.resolve().parents
        ):
            raise Refused(f"{source} lies inside --out {out}, where clips are written: choose another --out")
        place = out
    else:
        place = next(folder for folder in out.parents if folder.exists() or folder == folder.parent)
        if not place.is_dir():
            raise Refused(f"--out {out}: {place} is not a folder")
    paths = ClipPaths(source, identity, out, place / f".{out.name or 'clips'}.partial-{os.getpid()}")
    if out.is_dir():
        paths.guard(path for pattern in OUTPUTS for path in out.glob(pattern))
    return paths


def make_staging(paths: ClipPaths) -> None:
    """Create the staging folder, the proof that --out's place can be written; Refused if not. Folders
    left by earlier runs that were killed outright (their process is gone) are removed first."""
    _sweep(paths.staging)
    try:
        paths.staging.mkdir()
    except OSError as error:
        raise Refused(f"--out {paths.out}: cannot write there ({error.strerror})") from None


def _readable(source: Path) -> tuple[int, int]:
    try:
        info = source.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Refused(f"{source}: a symlink loop") from None
        if source.is_symlink():
            raise Refused(f"{source}: a broken symlink (to {os.readlink(source)})") from None
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            raise Refused(f"{source}: no such file") from None
        raise Refused(f"{source}: cannot be read ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise Refused(f"{source}: a folder, not a video file")
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"{source}: not a regular file")
    if info.st_size == 0:
        raise Refused(f"{source}: the file is empty (0 bytes)")
    try:
        os.close(os.open(source, os.O_RDONLY))
    except OSError as error:
        raise Refused(f"{source}: cannot be read ({error.strerror})") from None
    return info.st_dev, info.st_ino


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _sweep(staging: Path) -> None:
    prefix = staging.name.rsplit("-", 1)[0]
    pattern = re.compile(re.escape(prefix) + r"-(\d+)")
    with contextlib.suppress(OSError):
        for folder in staging.parent.iterdir():
            found = pattern.fullmatch(folder.name)
            if found and not _alive(int(found.group(1))) and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True

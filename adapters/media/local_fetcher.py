"""MediaFetcher for files already on this machine: the CLI's only. Nothing the API receives reaches it, so no
request can name a path on the server."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import attrs

from domain.errors import MediaError
from domain.ports import FetchedMedia

_BLOCK = 1 << 20


@attrs.frozen
class LocalFileFetcher:
    """Resolves a local path (or ``file://`` URL) and hashes it in blocks, never loading it whole."""

    async def fetch(self, source: str) -> FetchedMedia:
        return await asyncio.to_thread(self._fetch, source)

    def _fetch(self, source: str) -> FetchedMedia:
        path = Path(source.removeprefix("file://")).expanduser()
        if not path.exists():
            raise MediaError(f"{source}: no such file")
        if not path.is_file():
            raise MediaError(f"{source}: not a regular file")
        return hashed(path.resolve(), source)


def hashed(path: Path, name: str) -> FetchedMedia:
    """``path`` with its sha256, read in blocks (never whole); MediaError, naming ``name``, for a file that
    cannot be read or is empty. Not temporary: it is the user's file."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
                size += len(block)
    except OSError as error:
        raise MediaError(f"{name}: cannot be read ({error.strerror})") from None
    if size == 0:
        raise MediaError(f"{name}: the file is empty (0 bytes)")
    return FetchedMedia(path=path, sha256=digest.hexdigest(), size_bytes=size)

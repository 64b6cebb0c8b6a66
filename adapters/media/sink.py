"""Streaming media into a file: a byte cap, an early signature check and the sha256, on the way in.

URL downloads (adapters.media.url_fetcher) and API uploads (entrypoints.http.uploads) both arrive in chunks
and are stored the same way: nothing is written until the first bytes look like audio or video, the file is
named by a random id (never by anything the sender chose), and the cap stops the stream as soon as it is
passed.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import IO

import attrs

from adapters.media.signature import HEAD_BYTES, media_kind
from domain.errors import MediaTooLarge
from domain.ports import FetchedMedia


@attrs.define
class MediaSink:
    """The file a body streams into, opened only once the first bytes look like media. Writes are small
    page-cache writes made on the loop: a thread hop per chunk would cost more than it spares."""

    folder: Path
    max_bytes: int
    source: str  # how messages name what streams in ("the upload", a URL)
    size: int = 0
    path: Path | None = None
    _head: bytearray = attrs.Factory(bytearray)
    _file: IO[bytes] | None = None
    _digest: hashlib._Hash = attrs.Factory(hashlib.sha256)

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise MediaTooLarge(f"{self.source} is larger than the {self.max_bytes} byte limit")
        self._digest.update(chunk)
        if self._file is not None:
            self._file.write(chunk)
            return
        self._head += chunk
        if len(self._head) >= HEAD_BYTES:
            self._open()

    def finish(self) -> FetchedMedia:
        """The stored file (temporary: its reader decides whether it stays)."""
        if self._file is None:
            self._open()  # a body shorter than the signature check wants
        assert self._file is not None and self.path is not None
        self._file.close()
        return FetchedMedia(self.path, self._digest.hexdigest(), self.size, temporary=True)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _open(self) -> None:
        media_kind(bytes(self._head[:HEAD_BYTES]))
        self.folder.mkdir(parents=True, exist_ok=True)
        # Never a name from the URL, Content-Disposition or an upload: those are the sender's to choose.
        self.path = self.folder / secrets.token_hex(16)
        self._file = self.path.open("xb")
        self._file.write(self._head)
        self._head.clear()

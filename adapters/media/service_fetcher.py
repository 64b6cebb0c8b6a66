"""MediaFetcher for the service's workers: files the API stored as uploads, and http(s) URLs.

Unlike the CLI's fetcher it never opens a path a caller names: an upload is named by its id only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import stat
from collections.abc import Iterable
from pathlib import Path

import attrs

from adapters.media.address_guard import AddressGuard
from adapters.media.local_fetcher import hashed
from adapters.media.upload_folder import UPLOAD_ID
from adapters.media.url_fetcher import checked_url
from domain.errors import SourceRejected
from domain.jobs import UPLOAD_PREFIX
from domain.ports import FetchedMedia, MediaFetcher


def validate_source_url(url: str, allowed_networks: Iterable[str] = ()) -> str:
    """The URL a job will fetch, normalised; SourceRejected for one it never could. Checked when the job is
    submitted, without a DNS lookup: a literal address is judged now, a host name when the worker connects
    (the only check that counts, since names resolve differently later)."""
    checked = checked_url(url)
    try:
        literal = ipaddress.ip_address(checked.host)
    except ValueError:
        return str(checked)
    AddressGuard.allowing(allowed_networks).check(checked.host, literal)
    return str(checked)


@attrs.frozen
class ServiceMediaFetcher:
    media_root: Path  # uploads live in media_root / "uploads" / <id>
    http: MediaFetcher

    async def fetch(self, source: str) -> FetchedMedia:
        if source.startswith(UPLOAD_PREFIX):
            return await asyncio.to_thread(self._upload, source.removeprefix(UPLOAD_PREFIX))
        scheme = source.partition(":")[0].lower()
        if scheme in ("http", "https"):
            return await self.http.fetch(source)
        raise SourceRejected("a source is an upload id or an http(s) URL, not a path or another scheme")

    def _upload(self, upload_id: str) -> FetchedMedia:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise SourceRejected("an upload id is 32 lowercase hexadecimal characters")
        folder = self.media_root / "uploads"
        path = folder / upload_id
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            raise SourceRejected(f"upload {upload_id} does not exist") from None
        # lstat: a link planted in the folder must not lead the worker to a file elsewhere.
        if not stat.S_ISREG(mode) or path.resolve().parent != folder.resolve():
            raise SourceRejected(f"upload {upload_id} is not a regular file")
        # Not temporary: a retried attempt reads it again. PruneUploads removes it once no job needs it.
        return hashed(path, f"upload {upload_id}")

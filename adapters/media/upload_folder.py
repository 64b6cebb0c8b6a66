"""``UploadFolder``: the API's uploads on disk, ``MEDIA_DIR/uploads/<32 hex characters>``.

Only names of that form are listed or removed, and only regular files (never what a link points at), so a
stray file an operator left in the folder is never touched.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import attrs

UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@attrs.frozen
class UploadFolder:
    folder: Path

    def older_than(self, cutoff: datetime) -> Sequence[str]:
        limit = cutoff.timestamp()
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return []
        old = []
        for entry in entries:
            if not UPLOAD_ID.fullmatch(entry.name):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed meanwhile (another worker's sweep)
            if stat.S_ISREG(info.st_mode) and info.st_mtime < limit:
                old.append(entry.name)
        return sorted(old)

    def remove(self, upload_id: str) -> int:
        if not UPLOAD_ID.fullmatch(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        path = self.folder / upload_id
        try:
            size = path.lstat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

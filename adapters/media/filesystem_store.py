"""MediaStore on a local folder (or a shared volume mounted on every worker and API replica)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from domain.errors import InvalidInput

# Job ids are uuids; anything else that could name a folder outside the root is refused, not rewritten,
# so two different ids can never share one folder.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


@attrs.frozen
class FilesystemMediaStore:
    """Rendered clips of a job live in ``root/clips/<job_id>/``."""

    root: Path = attrs.field(converter=Path)

    def clip_dir(self, job_id: str) -> Path:
        if not _SAFE_ID.fullmatch(job_id):
            raise InvalidInput(f"not a valid job id for a media folder: {job_id!r}")
        base = (self.root / "clips").resolve()
        path = base / job_id
        # Belt and braces: a symlink planted under the root must not lead outside it either.
        path.mkdir(parents=True, exist_ok=True)
        if not path.resolve().is_relative_to(base):
            raise InvalidInput(f"media folder for job {job_id!r} is outside the store")
        return path

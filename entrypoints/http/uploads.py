"""Streaming a multipart upload straight to disk: byte cap, signature check and sha256 on the way in.

The body is never held in memory, and the client's file name is kept only as text to show: the file on disk
is named by a random id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from pathlib import Path
from typing import IO, Any

import attrs
from starlette.requests import Request
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import BaseTarget, ValueTarget
from streaming_form_data.validators import MaxSizeValidator, ValidationError

from adapters.media.signature import HEAD_BYTES, media_kind
from domain.errors import InvalidInput, MediaTooLarge

# Room for the multipart framing and the options part around the file itself.
_FRAMING_ALLOWANCE = 64 * 1024
_MAX_OPTIONS_BYTES = 16 * 1024
_MAX_NAME_CHARS = 255


@attrs.frozen
class ReceivedUpload:
    upload_id: str
    path: Path
    sha256: str
    size_bytes: int
    filename: str | None
    options: dict[str, Any]


class _FileTarget(BaseTarget):
    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(validator=MaxSizeValidator(max_bytes))
        self.path = path
        self.size = 0
        self.digest = hashlib.sha256()
        self._head = b""
        self._checked = False
        self._file: IO[bytes] | None = None

    def on_start(self) -> None:
        if self._file is not None or self.size:
            raise InvalidInput("send exactly one 'file' part")
        self._file = self.path.open("xb")

    def on_data_received(self, chunk: bytes) -> None:
        assert self._file is not None  # on_start ran
        self._file.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        if not self._checked:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
            if len(self._head) >= HEAD_BYTES:
                self.check()

    def on_finish(self) -> None:
        self.close()

    def check(self) -> None:
        self._checked = True
        media_kind(self._head)  # raises UnsupportedMedia for anything that is not audio/video

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def receive_upload(request: Request, uploads_dir: Path, max_bytes: int) -> ReceivedUpload:
    """The ``file`` part saved under ``uploads_dir``, and the ``options`` part parsed as JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + _FRAMING_ALLOWANCE:
        raise MediaTooLarge(f"the upload is {int(declared)} bytes; the limit is {max_bytes} bytes")
    upload_id = uuid.uuid4().hex
    await asyncio.to_thread(uploads_dir.mkdir, parents=True, exist_ok=True)
    target = _FileTarget(uploads_dir / upload_id, max_bytes)
    options = ValueTarget(validator=MaxSizeValidator(_MAX_OPTIONS_BYTES))
    try:
        parser = StreamingFormDataParser(headers=request.headers)
        parser.register("file", target)
        parser.register("options", options)
        async for chunk in request.stream():
            parser.data_received(chunk)
        if not target._started or target.size == 0:
            raise InvalidInput("the upload needs a non-empty 'file' part")
        if not target._checked:
            target.check()  # a file shorter than the signature window
    except ValidationError:
        target.close()
        target.path.unlink(missing_ok=True)
        if options.value and len(options.value) >= _MAX_OPTIONS_BYTES:
            raise InvalidInput("the 'options' part is too large") from None
        raise MediaTooLarge(f"the upload is larger than the limit of {max_bytes} bytes") from None
    except Exception as error:
        target.close()
        target.path.unlink(missing_ok=True)
        if type(error).__module__.startswith("streaming_form_data"):
            raise InvalidInput(f"malformed multipart body: {error}") from None
        raise
    return ReceivedUpload(
        upload_id=upload_id,
        path=target.path,
        sha256=target.digest.hexdigest(),
        size_bytes=target.size,
        filename=_display_name(target.multipart_filename),
        options=_options(options.value),
    )


def _options(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("the 'options' part is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("the 'options' part must be a JSON object")
    return value


def _display_name(name: str | None) -> str | None:
    """The client's file name as text to show: its last path component, printable, bounded."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable())[:_MAX_NAME_CHARS].strip()
    return cleaned or None

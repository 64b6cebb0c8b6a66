"""Streaming a multipart upload straight to disk: byte cap, signature check and sha256 on the way in.

The body is never held in memory, and the client's file name is kept only as text to show: the file on disk
is named by a random id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
from starlette.requests import Request
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import BaseTarget, ValueTarget
from streaming_form_data.validators import MaxSizeValidator, ValidationError

from adapters.media.sink import MediaSink
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
    def __init__(self, sink: MediaSink) -> None:
        super().__init__()
        self.sink = sink
        self.started = False

    def on_start(self) -> None:
        if self.started:
            raise InvalidInput("send exactly one 'file' part")
        self.started = True

    def on_data_received(self, chunk: bytes) -> None:
        self.sink.feed(chunk)


async def receive_upload(request: Request, uploads_dir: Path, max_bytes: int) -> ReceivedUpload:
    """The ``file`` part saved under ``uploads_dir`` (named by its upload id), and the ``options`` part
    parsed as JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + _FRAMING_ALLOWANCE:
        raise MediaTooLarge(f"the upload is {int(declared)} bytes; the limit is {max_bytes} bytes")
    sink = MediaSink(uploads_dir, max_bytes, "the upload")
    target = _FileTarget(sink)
    options = ValueTarget(validator=MaxSizeValidator(_MAX_OPTIONS_BYTES))
    try:
        parser = StreamingFormDataParser(headers=request.headers)
        parser.register("file", target)
        parser.register("options", options)
        async for chunk in request.stream():
            parser.data_received(chunk)
        if not target.started or sink.size == 0:
            raise InvalidInput("the upload needs a non-empty 'file' part")
        stored = sink.finish()
    except ValidationError:  # only the options part has a validator
        sink.discard()
        raise InvalidInput("the 'options' part is too large") from None
    except Exception as error:
        sink.discard()
        if type(error).__module__.startswith("streaming_form_data"):
            raise InvalidInput(f"malformed multipart body: {error}") from None
        raise
    return ReceivedUpload(
        upload_id=stored.path.name,
        path=stored.path,
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
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

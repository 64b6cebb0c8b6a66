"""Errors the domain and use cases raise; drivers map each ``code`` to an exit status or HTTP status."""

from __future__ import annotations


class OpusClipError(Exception):
    """Base class: every expected failure has a stable machine-readable code."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(OpusClipError):
    code = "invalid_input"


class InvalidOptions(InvalidInput):
    code = "invalid_options"


class MediaError(OpusClipError):
    """The file is not usable media (missing, empty, truncated, corrupt, no video stream)."""

    code = "invalid_media"


class MediaLimitExceeded(MediaError):
    code = "media_limit_exceeded"


class NotFound(OpusClipError):
    code = "not_found"


class Conflict(OpusClipError):
    code = "conflict"


class DependencyUnavailable(OpusClipError):
    code = "dependency_unavailable"

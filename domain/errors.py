"""Errors the domain and use cases raise; drivers map each ``code`` to an exit status or HTTP status."""

from __future__ import annotations


class OpusClipError(Exception):
    """Base class: every expected failure has a stable machine-readable code.

    ``transient`` says whether another attempt may succeed (a network error, a database restart); a job
    that fails with a permanent error (corrupt or unsupported media, bad options) fails at once.
    """

    code = "error"
    transient = False

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
    transient = True


class SourceRejected(InvalidInput):
    """A source the service will not fetch: a scheme other than http(s), or an address that is not public."""

    code = "source_rejected"


class SourceUnreachable(OpusClipError):
    """The source could not be fetched right now (network error, timeout, 5xx): worth another attempt."""

    code = "source_unreachable"
    transient = True


class UnsupportedMedia(MediaError):
    """The bytes are not a media container the service reads (their signature says so)."""

    code = "unsupported_media"


class MediaTooLarge(MediaLimitExceeded):
    code = "media_too_large"


class CorruptMedia(MediaError):
    """The decoder crashed, ran out of memory or hung on this file (it runs in a child process).

    Transient: a crash can be the machine's doing (memory pressure); after the last attempt it is the file's.
    """

    code = "corrupt_media"
    transient = True


class Unauthenticated(OpusClipError):
    """No credentials, or credentials that do not verify (bad signature, expired, wrong audience)."""

    code = "unauthenticated"


class CredentialsMissing(Unauthenticated):
    """No credentials at all (rather than bad ones): RFC 6750's challenge then carries no error code."""


class PermissionDenied(OpusClipError):
    """Valid credentials without the scope the operation needs."""

    code = "forbidden"


class RateLimited(OpusClipError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IllegalTransition(Conflict):
    """A job (or run) was asked to move to a state its current state does not lead to."""

    code = "illegal_transition"


class LeaseLost(OpusClipError):
    """This attempt no longer holds the job: another attempt took it over, so this one must not write."""

    code = "lease_lost"


class LeaseHeld(IllegalTransition):
    """The job is running under a live lease: another attempt may start only after ``seconds_left``."""

    code = "lease_held"

    def __init__(self, message: str, seconds_left: float) -> None:
        super().__init__(message)
        self.seconds_left = seconds_left


class JobCancelled(OpusClipError):
    """The attempt stopped at a stage boundary because the job was cancelled."""

    code = "cancelled"


class RetryScheduled(OpusClipError):
    """The attempt failed with an error another attempt may not repeat; the job is queued again and the
    queue should run it after ``delay_seconds``. ``cause`` is the error's code."""

    code = "retry_scheduled"

    def __init__(self, message: str, delay_seconds: float, cause: str) -> None:
        super().__init__(message)
        self.delay_seconds = delay_seconds
        self.cause = cause


class JobFailed(OpusClipError):
    """The job failed for good and says so on its row; ``code`` and the message are the failure's own."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code

"""When a failed attempt is tried again: exponential backoff with jitter, up to a number of attempts."""

from __future__ import annotations

import random

import attrs

from domain.errors import OpusClipError


@attrs.frozen
class RetryPolicy:
    """``max_attempts`` counts every attempt, the first included; delays grow as base · 2^(n-1), capped, and
    each is drawn uniformly from [delay/2, delay] so that jobs failing together do not retry together."""

    max_attempts: int = 3
    base_seconds: float = 5.0
    max_seconds: float = 300.0

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_seconds < 0 or self.max_seconds < self.base_seconds:
            raise ValueError(f"invalid retry policy {self}")

    def should_retry(self, error: BaseException, attempts: int) -> bool:
        return is_transient(error) and attempts < self.max_attempts

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempts + 1``."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return (rng or random).uniform(ceiling / 2, ceiling)


def is_transient(error: BaseException) -> bool:
    """Expected errors say whether another attempt may help; an unexpected one (a bug, a crash of some
    library) gets the benefit of the doubt until the attempts run out."""
    if isinstance(error, OpusClipError):
        return error.transient
    return True

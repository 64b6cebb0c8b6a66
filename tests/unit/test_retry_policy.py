import random

import pytest

from domain.errors import CorruptMedia, DependencyUnavailable, MediaError, SourceUnreachable, UnsupportedMedia
from domain.retry import RetryPolicy, is_transient


def test_delays_grow_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=2, max_seconds=30)
    rng = random.Random(7)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 30), (9, 30)]:
        delays = [policy.delay(attempts, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4, "no jitter: jobs failing together retry together"


def test_transient_errors_retry_until_the_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=3)
    error = SourceUnreachable("connection reset")
    assert [policy.should_retry(error, n) for n in (1, 2, 3)] == [True, True, False]


@pytest.mark.parametrize("error", [MediaError("truncated"), UnsupportedMedia("html")])
def test_permanent_errors_never_retry(error: Exception) -> None:
    assert not RetryPolicy(max_attempts=5).should_retry(error, 1)


def test_what_counts_as_transient() -> None:
    assert is_transient(DependencyUnavailable("db down"))
    assert is_transient(CorruptMedia("the decoder crashed"))  # may be the machine's doing
    assert is_transient(RuntimeError("a bug"))  # benefit of the doubt, bounded by the attempts
    assert not is_transient(MediaError("no video stream"))

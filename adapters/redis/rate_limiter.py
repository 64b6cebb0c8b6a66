"""``LimitsRateLimiter``: the RateLimiter port on the ``limits`` library's moving window, kept in Redis.

Every request asks it first, so a decision is bounded however Redis fails: the socket timeouts end a refused,
silent or half-open connection, retries are off, and ``asyncio.timeout`` caps the whole exchange (a fresh
connection's handshake and a refusal's second round trip included). Past the bound it raises
``DependencyUnavailable`` and the HTTP layer decides. Nothing is cached between calls: the pool reconnects on
the next hit, so decisions resume by themselves once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Self

import attrs
import limits
import redis.asyncio as aioredis
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from adapters.redis.cache import create_redis_client
from domain.auth import RateDecision, RouteClass
from domain.errors import DependencyUnavailable

# Well inside the 250 ms a request may wait for its decision, leaving room for a busy event loop.
DECISION_TIMEOUT_SECONDS = 0.2
# Start-up may take longer: a connection's handshake and loading limits' scripts into Redis.
WARM_UP_SECONDS = 5.0
# No route class is named this, so warm-up entries can never count against anyone's budget.
_WARM_UP = ("warm-up", "start")

log = logging.getLogger(__name__)

_OUTAGE = (RedisError, OSError, TimeoutError)


@attrs.define
class LimitsRateLimiter:
    """Budgets per (subject, route class), e.g. ``{RouteClass.READ: limits.parse("120/minute")}``."""

    client: aioredis.Redis
    budgets: Mapping[RouteClass, limits.RateLimitItem]
    timeout_seconds: float = DECISION_TIMEOUT_SECONDS
    key_prefix: str = "opusclip:rate"
    _window: MovingWindowRateLimiter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        # Our pool decides where to connect, with our timeouts and no retries; the URI only picks limits'
        # redis-py bridge. limits types pass-through options as scalars, but a pool is what Redis() takes.
        options: dict[str, Any] = {"connection_pool": self.client.connection_pool}
        storage = RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=self.key_prefix, **options
        )
        self._window = MovingWindowRateLimiter(storage)

    @classmethod
    def from_url(
        cls, redis_url: str, *, read: str, submit: str, timeout_seconds: float = DECISION_TIMEOUT_SECONDS
    ) -> Self:
        """``read`` and ``submit`` are rates such as ``120/minute``; ValueError if one does not parse."""
        client = create_redis_client(
            redis_url, socket_timeout=timeout_seconds, connect_timeout=timeout_seconds
        )
        budgets = {RouteClass.READ: limits.parse(read), RouteClass.SUBMIT: limits.parse(submit)}
        return cls(client, budgets, timeout_seconds)

    async def hit(self, subject: str, route_class: RouteClass) -> RateDecision:
        budget = self.budgets[route_class]
        # The class goes first: it never holds "/", so no subject can spell another subject's key.
        identifiers = (route_class.value, subject)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                if await self._window.hit(budget, *identifiers):
                    return RateDecision(allowed=True)
                window = await self._window.get_window_stats(budget, *identifiers)
        except _OUTAGE as error:
            raise DependencyUnavailable(f"rate limiter: redis unavailable ({_describe(error)})") from error
        # reset_time is when the oldest request in the window leaves it, letting the next one in.
        return RateDecision(allowed=False, retry_after=max(1, math.ceil(window.reset_time - time.time())))

    async def warm_up(self) -> None:
        """Connect and load limits' scripts into Redis at start-up, so that the first requests do not pay
        for the handshake inside their decision bound (on a loaded machine they could not, and were refused
        with 503). Redis being down is not fatal here: decisions fail closed, request by request, until it
        is back."""
        try:
            async with asyncio.timeout(WARM_UP_SECONDS):
                for budget in self.budgets.values():
                    await self._window.hit(budget, *_WARM_UP)
        except _OUTAGE as error:
            log.warning("rate_limiter.warm_up_failed", extra={"error": _describe(error)})

    async def close(self) -> None:
        await self.client.aclose()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__

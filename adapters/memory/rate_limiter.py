"""RateLimiter when RATE_LIMIT_ENABLED=false: every request is admitted."""

from __future__ import annotations

import attrs

from domain.auth import RateDecision, RouteClass


@attrs.frozen
class UnlimitedRateLimiter:
    async def hit(self, subject: str, route_class: RouteClass) -> RateDecision:
        return RateDecision(allowed=True)
